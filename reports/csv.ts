// results.csv: one row per cell with every number it recorded. Columns come from the data, not from a
// list of metric names: the label and training fields from the schema, then one group of columns per
// (eval condition, safety dataset), holding the judge, n and each metric the results carry metadata for,
// and one column per capability dataset, in the order the cells first list them.
import { stringify } from 'csv-stringify/sync';
import { cellLabels, cellResult, type CellResult } from '../results/result.ts';

const labelKeys = cellLabels.keyof().options;
const trainingKeys = Object.keys(cellResult.shape.training.unwrap().shape) as (keyof NonNullable<CellResult['training']>)[];

type Value = string | number | undefined;
interface Column {
  name: string;
  get: (cell: CellResult) => Value;
}

/** The columns of a set of cells, in a stable order. */
export function csvColumns(cells: readonly CellResult[]): Column[] {
  const safetyKeys = new Map<string, { condition: string; dataset: string; fields: string[] }>();
  const capabilityKeys = new Map<string, string>();
  for (const c of cells) {
    for (const s of c.safety) {
      const key = `${s.condition}\u0000${s.dataset}`;
      const fields = new Set([...(safetyKeys.get(key)?.fields ?? []), ...Object.keys(s.metrics)]);
      safetyKeys.set(key, { condition: s.condition, dataset: s.dataset, fields: [...fields] });
    }
    for (const r of c.capability) capabilityKeys.set(r.dataset, r.metric.name);
  }
  return [
    { name: 'id', get: (c) => c.id },
    { name: 'status', get: (c) => c.status },
    ...labelKeys.map((k): Column => ({ name: k, get: (c) => c.labels[k] })),
    ...[...safetyKeys.values()].flatMap(({ condition, dataset, fields }) =>
      ['judge', 'n', ...fields].map(
        (field): Column => ({
          name: `safety/${condition}/${dataset}/${field}`,
          get: (c) => {
            const s = c.safety.find((x) => x.condition === condition && x.dataset === dataset);
            return s?.[field as keyof typeof s] as Value;
          },
        }),
      ),
    ),
    ...[...capabilityKeys].map(
      ([dataset, metric]): Column => ({
        name: `capability/${dataset}/${metric}`,
        get: (c) => c.capability.find((r) => r.dataset === dataset)?.value,
      }),
    ),
    ...trainingKeys.map((k): Column => ({ name: `training/${k}`, get: (c) => c.training?.[k] })),
    { name: 'seconds', get: (c) => c.seconds },
    { name: 'error', get: (c) => c.error?.message.split('\n')[0] },
  ];
}

const formulaLead = /^[=+\-@\t\r]/;
const plainNumber = /^[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?$/i;

/**
 * A text cell a spreadsheet would run as a formula (it starts with =, +, -, @, tab or carriage return:
 * OWASP's CSV-injection rule) gets a leading single quote, which spreadsheets show as text. Numbers, and
 * text that is a plain number such as "-1.5", are left as they are: they cannot hold a formula.
 */
function defuse(value: Value): Value {
  return typeof value === 'string' && formulaLead.test(value) && !plainNumber.test(value) ? `'${value}` : value;
}

/** results.csv text: a header and one row per cell (empty fields where a cell has no such value). */
export function resultsCsv(cells: readonly CellResult[]): string {
  const columns = csvColumns(cells);
  return stringify(
    cells.map((c) => columns.map((col) => defuse(col.get(c)) ?? '')),
    { header: true, columns: columns.map((c) => defuse(c.name) as string) },
  );
}
