// PNG export through headless Debian chromium (CI installs it). Skipped, with a message, only when
// chromium is absent.
import { readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeReports } from '../../reports/index.ts';
import { findChromium, screenshot } from '../../reports/png.ts';
import { makeFakeRun } from './fake-run.ts';

const chromium = findChromium();
if (!chromium) console.warn('SKIPPED reports PNG export test: chromium is not installed (run `apt-get install chromium`).');

describe.skipIf(!chromium)('PNG export via headless chromium', () => {
  const run = makeFakeRun({ small: true });
  afterAll(() => rmSync(run.dir, { recursive: true, force: true }));

  it('writes one valid 1000×600 PNG per chart', async () => {
    const out = await writeReports(run.dir, { png: true });
    const pngs = out.files.filter((f) => f.endsWith('.png'));
    expect(pngs.map((f) => f.slice(join(run.dir, 'png').length + 1)).sort()).toEqual(out.charts.map((c) => `${c.id}.png`).sort());
    expect(pngs.length).toBeGreaterThanOrEqual(3);
    for (const file of pngs) {
      const bytes = readFileSync(file);
      expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
      expect(statSync(file).size).toBeGreaterThan(5000); // a blank page compresses to ~3 kB
      // IHDR: width and height, big-endian, at bytes 16 and 20.
      expect(bytes.readUInt32BE(16)).toBe(1000);
      expect(bytes.readUInt32BE(20)).toBe(600);
    }
  }, 180_000);

  it('kills chromium after the time limit and says so', async () => {
    const page = join(run.dir, 'report.html');
    const started = performance.now();
    await expect(screenshot(chromium!, page, join(run.dir, 'never.png'), 50)).rejects.toThrow(/timed out after 0.05 s/);
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
