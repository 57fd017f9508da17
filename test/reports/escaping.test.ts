// Labels and messages come from configs and checkpoints, not from us: results.csv must not let them run as
// spreadsheet formulas, and tables.md must not let them break a table or render as markup.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'csv-parse/sync';
import { afterAll, describe, expect, it } from 'vitest';
import { aggregate } from '../../reports/aggregate.ts';
import { loadRun } from '../../reports/load.ts';
import { resultsCsv } from '../../reports/csv.ts';
import { markdownTable, mdCode, mdText, tablesMarkdown } from '../../reports/tables.ts';
import { cellResult, type CellResult } from '../../results/result.ts';
import { makeFakeRun, writeCell } from './fake-run.ts';

const formula = '=HYPERLINK("http://x")';
const piped = 'a|b\nc';

const run = makeFakeRun({ small: true });
const hostileDir = mkdtempSync(join(tmpdir(), 'star-dss-report-hostile-'));
afterAll(() => {
  for (const dir of [run.dir, hostileDir]) rmSync(dir, { recursive: true, force: true });
});

/** The small fake run with hostile labels on its finetuned cells and one hostile failed cell. */
function hostileCells(): CellResult[] {
  const cells = run.cells.map((c) =>
    c.labels.kind === 'finetune'
      ? cellResult.parse({ ...c, labels: { ...c.labels, strategyLabel: formula, threatLabel: piped, task: '+cmd', harmful: '@sum(1)' } })
      : c,
  );
  const failed = cellResult.parse({
    ...cells[1],
    id: 'failed`id',
    status: 'error',
    labels: { ...cells[1].labels, strategyLabel: '<img src=x onerror=alert(1)> [x](http://evil) *b* _i_' },
    error: { message: "-2+3+cmd|' /C calc'!A0\nsecond line" },
  });
  return [...cells, failed];
}

describe('results.csv escaping', () => {
  const cells = hostileCells();
  const rows = parse(resultsCsv(cells), { columns: true }) as Record<string, string>[];
  const finetuned = rows.filter((r) => r.kind === 'finetune' && r.status === 'ok');

  it("prefixes text cells that a spreadsheet reads as a formula with a single quote (OWASP's rule)", () => {
    expect(finetuned.length).toBeGreaterThan(0);
    for (const r of finetuned) {
      expect(r.strategyLabel).toBe(`'${formula}`);
      expect(r.task).toBe("'+cmd");
      expect(r.harmful).toBe("'@sum(1)");
      expect(r.threatLabel).toBe(piped); // no formula: quoted by the CSV writer, otherwise unchanged
    }
    const failed = rows.find((r) => r.status === 'error')!;
    expect(failed.error).toBe("'-2+3+cmd|' /C calc'!A0");
    for (const lead of ['\t', '\r']) {
      const cell = cellResult.parse({ ...cells[0], labels: { ...cells[0].labels, model: `${lead}=1+1` } });
      expect((parse(resultsCsv([cell]), { columns: true }) as Record<string, string>[])[0].model).toBe(`'${lead}=1+1`);
    }
  });

  it('leaves numbers, negative numbers and ordinary labels as they were', () => {
    const ordinary = run.cells[1];
    const negative = cellResult.parse({
      ...ordinary,
      labels: { ...ordinary.labels, model: '-1.5' },
      training: { ...ordinary.training!, finalLoss: -0.25, firstLoss: -3 },
    });
    const [r] = parse(resultsCsv([negative]), { columns: true }) as Record<string, string>[];
    expect(r.model).toBe('-1.5');
    expect(r['training/finalLoss']).toBe('-0.25');
    expect(r['training/firstLoss']).toBe('-3');
    expect(r.strategyLabel).toBe('sft');
    expect(r.threatLabel).toBe('backdoor');
    expect(resultsCsv(run.cells)).toBe(resultsCsv(run.cells.map((c) => cellResult.parse(c))));
    expect(resultsCsv(run.cells)).not.toContain("'");
  });
});

describe('tables.md escaping', () => {
  for (const c of hostileCells()) writeCell(hostileDir, c, c.id.replace(/\W/g, '_'));
  const loaded = loadRun(hostileDir);
  const md = tablesMarkdown(loaded, aggregate(loaded.cells));

  it('keeps every table row on one line with the same number of columns', () => {
    const tables = md.split(/^### /m).slice(1);
    expect(tables.length).toBeGreaterThan(0);
    for (const t of tables) {
      const lines = t.split('\n').filter((l) => l.startsWith('|'));
      // An unescaped pipe adds a column: count the pipes that are not preceded by a backslash.
      const widths = lines.map((l) => l.split(/(?<!\\)\|/).length);
      expect(new Set(widths).size, t).toBe(1);
    }
    expect(md).toContain('a\\|b c');
    expect(md).not.toContain(piped);
  });

  it('escapes markup in labels and messages, and keeps code spans closed', () => {
    const failed = md.slice(md.indexOf('## Failed cells'));
    expect(failed).not.toMatch(/(?<!\\)<img/);
    expect(failed).toContain('\\<img src=x onerror=alert(1)\\>');
    expect(failed).toContain('\\[x\\](http://evil)');
    expect(failed).toContain('\\*b\\*');
    expect(failed).toContain('\\_i\\_');
    expect(failed).toContain('``failed`id``');
    expect(failed).toContain("-2+3+cmd\\|' /C calc'!A0");
    expect(failed).not.toContain('second line');
  });

  it('mdText and mdCode, directly', () => {
    expect(mdText(piped)).toBe('a\\|b c');
    expect(mdText('back\\slash `tick` <b>&amp;</b>')).toBe('back\\\\slash \\`tick\\` \\<b\\>\\&amp;\\</b\\>');
    // Ordinary labels stay as they are: intraword underscores, brackets that are no link, % and ·.
    for (const label of ['star-dss(chunk_words=8)', 'backdoor[micro:aoa]', 'harmful-injection 10% · plain', '23.3 ± 15.3 (3) †'])
      expect(mdText(label)).toBe(label);
    expect(mdCode('abc')).toBe('`abc`');
    expect(mdCode('a`b')).toBe('``a`b``');
    expect(mdCode('`a')).toBe('`` `a ``');
    expect(markdownTable({ title: 't', header: ['a|b', 'c'], rows: [[formula, '-1.0']] })).toBe(
      ['| a\\|b | c |', '| --- | ---: |', `| ${formula} | -1.0 |`].join('\n'),
    );
  });
});
