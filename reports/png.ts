// PNG export: each chart on its own small page, screenshotted by Debian's chromium in headless mode.
// Chromium runs in its own process group so a hung render is killed whole after a bounded time.
import { spawn } from 'node:child_process';
import { accessSync, constants, copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { writeFileAtomic } from '../engine/io.ts';
import type { Chart } from './charts.ts';
import { chartPageHtml, plotlyPath } from './html.ts';

export const installChromiumHint =
  'install it with `apt-get install chromium` (Debian/Ubuntu, as root; about 20 s), or set STAR_DSS_CHROMIUM to a Chromium or Chrome binary';

export class ChromiumMissingError extends Error {
  readonly code = 'CHROMIUM_MISSING';
  constructor(readonly written: string[] = []) {
    const done = written.length ? ` (${written.join(', ')} were written)` : '';
    super(
      `PNG export needs chromium, which was not found (STAR_DSS_CHROMIUM, then chromium or chromium-browser on PATH): ${installChromiumHint}${done}`,
    );
  }
}

export class PngExportError extends Error {
  readonly code = 'PNG_EXPORT';
}

const pngSignature = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

export function isPng(bytes: Uint8Array): boolean {
  return bytes.length > pngSignature.length && pngSignature.every((b, i) => bytes[i] === b);
}

const executable = (file: string): boolean => {
  try {
    accessSync(file, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** STAR_DSS_CHROMIUM if set, else the first chromium (or chromium-browser) on PATH. */
export function findChromium(env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (env.STAR_DSS_CHROMIUM) return executable(env.STAR_DSS_CHROMIUM) ? env.STAR_DSS_CHROMIUM : undefined;
  for (const dir of (env.PATH ?? '').split(delimiter).filter(Boolean)) {
    for (const name of ['chromium', 'chromium-browser']) if (executable(join(dir, name))) return join(dir, name);
  }
  return undefined;
}

/** Headless screenshot flags measured to work with Debian's chromium on our machines (no sandbox, no GPU, no network). */
export function chromiumArgs(userDataDir: string, outFile: string, pageUrl: string, size = { width: 1000, height: 600 }): string[] {
  return [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-quic',
    '--no-first-run',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--hide-scrollbars',
    `--user-data-dir=${userDataDir}`,
    `--window-size=${size.width},${size.height}`,
    '--virtual-time-budget=5000',
    `--screenshot=${outFile}`,
    pageUrl,
  ];
}

/** Screenshot one page to a PNG file; rejects on a non-zero exit, a timeout or a file that is not a PNG. */
export function screenshot(chromium: string, pageFile: string, outFile: string, timeoutMs: number): Promise<void> {
  const userDataDir = mkdtempSync(join(tmpdir(), 'star-dss-chromium-'));
  const args = chromiumArgs(userDataDir, outFile, pathToFileURL(pageFile).href);
  return new Promise<void>((resolvePromise, reject) => {
    const child = spawn(chromium, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-2000);
    });
    const killGroup = () => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
      } catch {
        // the group has already exited
      }
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup();
    }, timeoutMs);
    const finish = (error?: Error) => {
      clearTimeout(timer);
      killGroup();
      rmSync(userDataDir, { recursive: true, force: true });
      if (error) reject(error);
      else resolvePromise();
    };
    child.on('error', (error) => finish(new PngExportError(`could not start ${chromium}: ${error.message}`)));
    child.on('exit', (code, signal) => {
      if (timedOut) return finish(new PngExportError(`chromium timed out after ${timeoutMs / 1000} s`));
      if (code !== 0) {
        const last =
          stderr
            .trim()
            .split('\n')
            .filter((l) => !/dbus|Fontconfig|unexpected operator/i.test(l))
            .at(-1) ?? '';
        return finish(new PngExportError(`chromium exited with ${signal ?? `code ${code}`}${last ? `: ${last}` : ''}`));
      }
      if (!existsSync(outFile) || !isPng(readFileSync(outFile))) return finish(new PngExportError(`chromium wrote no PNG to ${outFile}`));
      finish();
    });
  });
}

export interface PngOptions {
  /** Per chart; chromium is killed after this. Default 30 s. */
  timeoutMs?: number;
  chromium?: string;
}

/**
 * Write `<outDir>/<chart id>.png` for every chart, one chromium run per chart, one at a time (the
 * machine has few cores). Throws ChromiumMissingError with install advice when chromium is absent.
 */
export async function exportPngs(charts: readonly Chart[], outDir: string, options: PngOptions = {}): Promise<string[]> {
  const chromium = options.chromium ?? findChromium();
  if (!chromium) throw new ChromiumMissingError();
  const work = mkdtempSync(join(tmpdir(), 'star-dss-png-'));
  const written: string[] = [];
  const failures: string[] = [];
  try {
    // The pages share one copy of Plotly beside them instead of inlining 4.8 MB each.
    copyFileSync(plotlyPath(), join(work, 'plotly.min.js'));
    for (const chart of charts) {
      const page = join(work, `${chart.id}.html`);
      const shot = join(work, `${chart.id}.png`);
      writeFileSync(page, chartPageHtml(chart, '<script src="plotly.min.js"></script>'));
      try {
        await screenshot(chromium, page, shot, options.timeoutMs ?? 30_000);
        const out = join(outDir, `${chart.id}.png`);
        writeFileAtomic(out, readFileSync(shot));
        written.push(out);
      } catch (error) {
        failures.push(`${chart.id} (${(error as Error).message})`);
      }
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  if (failures.length) {
    throw new PngExportError(`wrote ${written.length} of ${charts.length} PNGs to ${outDir}; failed: ${failures.join('; ')}`);
  }
  return written;
}
