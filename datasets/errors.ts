// One-line, actionable errors for bad dataset files: they name the file, the line (1-based) and the field.
export class DatasetFormatError extends Error {
  readonly code = 'DATASET_FORMAT';
  constructor(
    readonly file: string,
    readonly line: number | undefined,
    readonly field: string | undefined,
    readonly problem: string,
    readonly fix?: string,
  ) {
    const where = [file, line !== undefined ? `line ${line}` : undefined, field ? `field '${field}'` : undefined]
      .filter(Boolean)
      .join(', ');
    super(`${where}: ${problem}${fix ? `. Fix: ${fix}` : ''}`);
  }
}
