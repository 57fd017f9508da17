// Safetensors I/O in Hugging Face layout, with no dependency (no maintained npm reader exists).
// File: u64 little-endian header length N, N bytes of UTF-8 JSON
// `{name: {dtype, shape, data_offsets: [begin, end]}, __metadata__?: {string: string}}` (may be space-padded),
// then the data buffer. Offsets are relative to the buffer and must tile it exactly: no overlap, no holes,
// no trailing bytes (the rule of the reference Rust reader, which prevents polyglot files).
//
// Dtypes on read: F32 → Float32Array (bitwise), F16/BF16 → Float32Array (exact, NaN payloads kept),
// F64 → Float32Array (rounded to nearest), I32 → Int32Array, I64 → BigInt64Array, I16/I8/U16/U8 → Int32Array
// (exact widening), BOOL → Int32Array of 0/1. U32, U64, C64 and the 4-/6-/8-bit floats are rejected with
// UNSUPPORTED_DTYPE. Writing emits F32, I32 or I64, chosen by the typed-array class of the data.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { readTextFile } from '../io.ts';

export type SafetensorsErrorCode =
  | 'TRUNCATED'
  | 'HEADER_LENGTH'
  | 'HEADER_JSON'
  | 'BAD_OFFSETS'
  | 'SIZE_MISMATCH'
  | 'UNKNOWN_DTYPE'
  | 'UNSUPPORTED_DTYPE'
  | 'BAD_INDEX'
  | 'MISSING_SHARD'
  | 'MISSING_TENSOR'
  | 'NO_CHECKPOINT'
  | 'BAD_TENSOR';

/** One-line error naming the file and the problem; `code` is stable for programs to branch on. */
export class SafetensorsError extends Error {
  constructor(
    readonly code: SafetensorsErrorCode,
    readonly file: string,
    readonly problem: string,
  ) {
    super(`${file}: ${problem}`.replace(/\s*[\r\n]+\s*/g, ' '));
    this.name = 'SafetensorsError';
  }
}

/** Dtypes this reader decodes, with their size in bytes. */
const DTYPE_BYTES = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U16: 2,
  U8: 1,
  BOOL: 1,
} as const;

export type Dtype = keyof typeof DTYPE_BYTES;

/** Valid safetensors dtypes that we do not decode (they have no lossless plain typed-array form here). */
const UNSUPPORTED_DTYPES = new Set(['U32', 'U64', 'C64', 'F8_E4M3', 'F8_E5M2', 'F8_E8M0', 'F6_E2M3', 'F6_E3M2', 'F4']);

export type TensorData = Float32Array | Int32Array | BigInt64Array;

export interface StoredTensor {
  /** The dtype in the file; `data` holds the converted values (see the header comment). */
  dtype: Dtype;
  shape: number[];
  data: TensorData;
}

export interface WritableTensor {
  shape: readonly number[];
  /** Float32Array → F32, Int32Array → I32, BigInt64Array → I64. */
  data: TensorData;
}

/** A Map or any iterable of [name, tensor] pairs. */
export type TensorEntries = Iterable<readonly [string, WritableTensor]>;

export interface SafetensorsContent {
  tensors: Map<string, StoredTensor>;
  metadata: Record<string, string>;
}

/** The reference reader's limit; a larger header is a corrupt length, not a real header. */
const MAX_HEADER_BYTES = 100_000_000;
/** Linux moves at most ~2 GiB per read/write call; stay well below it. */
const IO_CHUNK = 1 << 30;

function assertLittleEndianHost(): void {
  // Typed-array views use host byte order; the format is little-endian.
  if (os.endianness() !== 'LE') throw new Error('safetensors I/O needs a little-endian host');
}

// ---------------------------------------------------------------------------------------------- reading

/** Reads bytes [position, position + target.length) into target. */
type ReadAt = (target: Uint8Array, position: number) => void;

interface HeaderEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function parseEntry(name: string, value: unknown, file: string): HeaderEntry {
  const bad = (what: string) => new SafetensorsError('HEADER_JSON', file, `tensor '${name}' in the header ${what}`);
  if (!isRecord(value)) throw bad('is not an object');
  const { dtype, shape, data_offsets: offsets } = value;
  if (typeof dtype !== 'string') throw bad("has no string 'dtype'");
  if (!Array.isArray(shape) || !shape.every(isCount)) throw bad("has no 'shape' array of non-negative integers");
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(isCount)) {
    throw bad("has no 'data_offsets' pair of non-negative integers");
  }
  if (!Object.hasOwn(DTYPE_BYTES, dtype)) {
    const supported = Object.keys(DTYPE_BYTES).join(', ');
    if (UNSUPPORTED_DTYPES.has(dtype)) {
      throw new SafetensorsError(
        'UNSUPPORTED_DTYPE',
        file,
        `tensor '${name}' has dtype ${dtype}, which this reader does not decode (supported: ${supported})`,
      );
    }
    throw new SafetensorsError('UNKNOWN_DTYPE', file, `tensor '${name}' has unknown dtype '${dtype}' (supported: ${supported})`);
  }
  const typed = dtype as Dtype;
  const [begin, end] = offsets as [number, number];
  if (begin > end) throw new SafetensorsError('BAD_OFFSETS', file, `tensor '${name}' has data_offsets [${begin}, ${end}] with begin > end`);
  const bytes = elementCount(shape) * DTYPE_BYTES[typed];
  if (!Number.isSafeInteger(bytes) || end - begin !== bytes) {
    throw new SafetensorsError(
      'SIZE_MISMATCH',
      file,
      `tensor '${name}' of shape [${shape.join(', ')}] and dtype ${typed} needs ${bytes} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
    );
  }
  return { name, dtype: typed, shape: [...shape], begin, end };
}

/** Parses and validates the JSON header against `dataBytes`, the bytes present after it. */
function parseHeader(bytes: Uint8Array, dataBytes: number, file: string): { entries: HeaderEntry[]; metadata: Record<string, string> } {
  let json: unknown;
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new SafetensorsError('HEADER_JSON', file, `invalid JSON header: ${(error as Error).message}`);
  }
  if (!isRecord(json)) throw new SafetensorsError('HEADER_JSON', file, 'the JSON header is not an object');

  const metadata: Record<string, string> = {};
  const entries: HeaderEntry[] = [];
  for (const [name, value] of Object.entries(json)) {
    if (name !== '__metadata__') {
      entries.push(parseEntry(name, value, file));
      continue;
    }
    if (!isRecord(value)) throw new SafetensorsError('HEADER_JSON', file, '__metadata__ is not an object');
    for (const [key, text] of Object.entries(value)) {
      if (typeof text !== 'string') {
        throw new SafetensorsError('HEADER_JSON', file, `__metadata__ value of '${key}' is not a string`);
      }
      metadata[key] = text;
    }
  }

  // Offsets must tile the data buffer: sort by position and walk it.
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  let previous: HeaderEntry | undefined;
  for (const entry of entries) {
    if (entry.begin < cursor) {
      throw new SafetensorsError(
        'BAD_OFFSETS',
        file,
        `tensor '${entry.name}' [${entry.begin}, ${entry.end}] overlaps tensor '${previous?.name}' [${previous?.begin}, ${previous?.end}]`,
      );
    }
    if (entry.begin > cursor) {
      throw new SafetensorsError(
        'BAD_OFFSETS',
        file,
        `data bytes [${cursor}, ${entry.begin}) before tensor '${entry.name}' belong to no tensor`,
      );
    }
    cursor = entry.end;
    previous = entry;
  }
  if (cursor > dataBytes) {
    // The header is consistent but the data is short: the classic interrupted download or copy.
    throw new SafetensorsError(
      'TRUNCATED',
      file,
      `tensors need ${cursor} data bytes after the header but the file holds ${dataBytes} (truncated file)`,
    );
  }
  if (cursor < dataBytes) {
    throw new SafetensorsError('BAD_OFFSETS', file, `${dataBytes - cursor} trailing data bytes after the last tensor belong to no tensor`);
  }
  return { entries, metadata };
}

/** Reads one tensor's bytes straight into a fresh typed array (always aligned; no intermediate copy for F32/I32/I64). */
function decode(entry: HeaderEntry, readAt: ReadAt, position: number): TensorData {
  const n = elementCount(entry.shape);
  const fill = <T extends ArrayBufferView>(array: T): T => {
    readAt(new Uint8Array(array.buffer, array.byteOffset, array.byteLength), position);
    return array;
  };
  switch (entry.dtype) {
    case 'F32':
      return fill(new Float32Array(n));
    case 'I32':
      return fill(new Int32Array(n));
    case 'I64':
      return fill(new BigInt64Array(n));
    case 'F16':
      return f16ToF32(fill(new Uint16Array(n)));
    case 'BF16':
      return bf16ToF32(fill(new Uint16Array(n)));
    case 'F64':
      return Float32Array.from(fill(new Float64Array(n)));
    case 'I16':
      return Int32Array.from(fill(new Int16Array(n)));
    case 'I8':
      return Int32Array.from(fill(new Int8Array(n)));
    case 'U16':
      return Int32Array.from(fill(new Uint16Array(n)));
    case 'U8':
      return Int32Array.from(fill(new Uint8Array(n)));
    case 'BOOL':
      return Int32Array.from(fill(new Uint8Array(n)), (b) => (b === 0 ? 0 : 1));
  }
}

let f16Table: Uint32Array | undefined;

/** F32 bit patterns of all 65536 F16 values; built once (256 KiB), then decoding is one lookup per element. */
function f16Bits(): Uint32Array {
  if (f16Table) return f16Table;
  const table = new Uint32Array(65536);
  const scratch = new Float32Array(1);
  const scratchBits = new Uint32Array(scratch.buffer);
  for (let h = 0; h < 65536; h++) {
    const sign = (h & 0x8000) << 16;
    const exponent = (h >> 10) & 0x1f;
    const mantissa = h & 0x3ff;
    if (exponent === 0x1f) {
      table[h] = (sign | 0x7f800000 | (mantissa << 13)) >>> 0; // inf, or NaN with its payload kept
    } else if (exponent !== 0) {
      table[h] = (sign | ((exponent - 15 + 127) << 23) | (mantissa << 13)) >>> 0;
    } else {
      scratch[0] = mantissa * 2 ** -24; // zero or subnormal: exact in F32
      table[h] = (sign | scratchBits[0]) >>> 0;
    }
  }
  f16Table = table;
  return table;
}

function f16ToF32(half: Uint16Array): Float32Array {
  const table = f16Bits();
  const out = new Float32Array(half.length);
  const bits = new Uint32Array(out.buffer); // write bits, so NaN payloads are not canonicalised
  for (let i = 0; i < half.length; i++) bits[i] = table[half[i]];
  return out;
}

function bf16ToF32(half: Uint16Array): Float32Array {
  const out = new Float32Array(half.length);
  const bits = new Uint32Array(out.buffer);
  for (let i = 0; i < half.length; i++) bits[i] = half[i] << 16;
  return out;
}

function parseFrom(size: number, readAt: ReadAt, file: string): SafetensorsContent {
  assertLittleEndianHost();
  if (size < 8) throw new SafetensorsError('TRUNCATED', file, `file has ${size} bytes, fewer than the 8-byte header length`);
  const prefix = new Uint8Array(8);
  readAt(prefix, 0);
  const declared = new DataView(prefix.buffer).getBigUint64(0, true);
  if (declared > BigInt(size - 8)) {
    throw new SafetensorsError(
      'HEADER_LENGTH',
      file,
      `header length ${declared} is larger than the ${size - 8} bytes after the length prefix`,
    );
  }
  if (declared > BigInt(MAX_HEADER_BYTES)) {
    throw new SafetensorsError('HEADER_LENGTH', file, `header length ${declared} exceeds the ${MAX_HEADER_BYTES}-byte limit`);
  }
  const headerBytes = new Uint8Array(Number(declared));
  readAt(headerBytes, 8);
  const dataStart = 8 + headerBytes.length;
  const { entries, metadata } = parseHeader(headerBytes, size - dataStart, file);
  const tensors = new Map<string, StoredTensor>();
  for (const entry of entries) {
    tensors.set(entry.name, { dtype: entry.dtype, shape: entry.shape, data: decode(entry, readAt, dataStart + entry.begin) });
  }
  return { tensors, metadata };
}

/** Reads a .safetensors file: the header first, then each tensor straight from the file into its array. */
export function readSafetensors(file: string): SafetensorsContent {
  const fd = fs.openSync(file, 'r');
  try {
    const readAt: ReadAt = (target, position) => {
      for (let done = 0; done < target.length; ) {
        const n = fs.readSync(fd, target, done, Math.min(target.length - done, IO_CHUNK), position + done);
        if (n === 0) throw new SafetensorsError('TRUNCATED', file, `unexpected end of file at byte ${position + done}`);
        done += n;
      }
    };
    return parseFrom(fs.fstatSync(fd).size, readAt, file);
  } finally {
    fs.closeSync(fd);
  }
}

/** Parses safetensors bytes already in memory (e.g. fetched over HTTP); `label` names them in errors. */
export function parseSafetensors(bytes: Uint8Array, label = '<bytes>'): SafetensorsContent {
  return parseFrom(bytes.length, (target, position) => target.set(bytes.subarray(position, position + target.length)), label);
}

// ---------------------------------------------------------------------------------------------- writing

function dtypeOf(data: TensorData): 'F32' | 'I32' | 'I64' {
  if (data instanceof Float32Array) return 'F32';
  if (data instanceof Int32Array) return 'I32';
  return 'I64';
}

interface PreparedTensor {
  name: string;
  shape: number[];
  data: TensorData;
}

/** Validates names, shapes and data lengths; keeps input order (sharding follows it, like a state dict). */
function prepare(tensors: TensorEntries, file: string): PreparedTensor[] {
  const seen = new Set<string>();
  const out: PreparedTensor[] = [];
  for (const [name, { shape, data }] of tensors) {
    const bad = (problem: string) => new SafetensorsError('BAD_TENSOR', file, `cannot write tensor '${name}': ${problem}`);
    if (name === '__metadata__') throw bad('the name is reserved for metadata');
    if (seen.has(name)) throw bad('the name appears twice');
    seen.add(name);
    if (!(data instanceof Float32Array || data instanceof Int32Array || data instanceof BigInt64Array)) {
      throw bad('data must be a Float32Array, Int32Array or BigInt64Array');
    }
    if (!shape.every((d) => isCount(d))) throw bad(`shape [${shape.join(', ')}] has a non-integer or negative size`);
    if (elementCount(shape) !== data.length) {
      throw bad(`shape [${shape.join(', ')}] holds ${elementCount(shape)} elements but data has ${data.length}`);
    }
    out.push({ name, shape: [...shape], data });
  }
  return out;
}

/** Header and data chunks of one file: names sorted, offsets contiguous, header space-padded to 8 bytes. */
function layout(tensors: readonly PreparedTensor[], metadata: Record<string, string>): Uint8Array[] {
  const sorted = [...tensors].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  // Built by hand: a JS object would move integer-like names ("0") to the front and break the order.
  const fields = [`"__metadata__":${JSON.stringify(metadata)}`];
  let offset = 0;
  for (const t of sorted) {
    const end = offset + t.data.byteLength;
    fields.push(`${JSON.stringify(t.name)}:${JSON.stringify({ dtype: dtypeOf(t.data), shape: t.shape, data_offsets: [offset, end] })}`);
    offset = end;
  }
  const json = Buffer.from(`{${fields.join(',')}}`, 'utf8');
  const header = Buffer.alloc(8 + Math.ceil(json.length / 8) * 8, 0x20);
  header.writeBigUInt64LE(BigInt(header.length - 8), 0);
  json.copy(header, 8);
  return [header, ...sorted.map((t) => new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength))];
}

/** Writes a temp file of its own beside `file`, fsyncs, then renames over `file`, so readers never see a partial file. */
function writeAtomic(file: string, chunks: readonly Uint8Array[]): void {
  const tmp = `${file}.tmp-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  const fd = fs.openSync(tmp, 'w');
  let ok = false;
  try {
    for (const chunk of chunks) {
      for (let done = 0; done < chunk.length; ) {
        done += fs.writeSync(fd, chunk, done, Math.min(chunk.length - done, IO_CHUNK));
      }
    }
    fs.fsyncSync(fd);
    ok = true;
  } finally {
    fs.closeSync(fd);
    if (!ok) fs.rmSync(tmp, { force: true });
  }
  fs.renameSync(tmp, file);
}

function withFormat(metadata: Record<string, string> | undefined, file: string): Record<string, string> {
  const merged = { format: 'pt', ...metadata }; // transformers writes (and some loaders expect) format "pt"
  for (const [key, value] of Object.entries(merged)) {
    if (typeof value !== 'string') throw new SafetensorsError('BAD_TENSOR', file, `metadata value of '${key}' is not a string`);
  }
  return merged;
}

/** Writes one .safetensors file atomically. `metadata` is merged over `{format: "pt"}`. */
export function writeSafetensors(file: string, tensors: TensorEntries, metadata?: Record<string, string>): void {
  assertLittleEndianHost();
  writeAtomic(file, layout(prepare(tensors, file), withFormat(metadata, file)));
}

// ------------------------------------------------------------------------------------- checkpoint dirs

export const SINGLE_FILE = 'model.safetensors';
export const INDEX_FILE = 'model.safetensors.index.json';
const SHARD_PATTERN = /^model-\d{5}-of-\d{5}\.safetensors$/;
/** The transformers default for `max_shard_size` ("5GB"). */
export const DEFAULT_MAX_SHARD_BYTES = 5_000_000_000;

/** `model-00001-of-00003.safetensors`: the transformers shard name (1-based). */
export function shardFileName(index: number, count: number): string {
  const pad = (n: number) => String(n).padStart(5, '0');
  return `model-${pad(index)}-of-${pad(count)}.safetensors`;
}

export interface WriteCheckpointOptions {
  /** Shard when the total tensor bytes exceed this; a tensor larger than it gets a shard of its own. */
  maxShardBytes?: number;
  metadata?: Record<string, string>;
}

export interface WrittenCheckpoint {
  /** File names written in `dir` (shards, then the index when sharded). */
  files: string[];
  /** Sum of tensor data bytes, as in the index's `metadata.total_size`. */
  totalSize: number;
}

/**
 * Writes `model.safetensors`, or `model-0000i-of-0000N.safetensors` shards + `model.safetensors.index.json`,
 * then removes files of the other layout or stale shards, so the directory holds exactly one checkpoint.
 */
export function writeCheckpointTensors(dir: string, tensors: TensorEntries, options: WriteCheckpointOptions = {}): WrittenCheckpoint {
  assertLittleEndianHost();
  const maxShardBytes = options.maxShardBytes ?? DEFAULT_MAX_SHARD_BYTES;
  if (!(maxShardBytes > 0)) throw new RangeError(`maxShardBytes must be positive, got ${maxShardBytes}`);
  const prepared = prepare(tensors, dir);
  const metadata = withFormat(options.metadata, dir);
  const totalSize = prepared.reduce((sum, t) => sum + t.data.byteLength, 0);
  fs.mkdirSync(dir, { recursive: true });

  // Greedy in input order, like transformers: consecutive layers stay in the same shard.
  const shards: PreparedTensor[][] = [[]];
  let current = 0;
  for (const t of prepared) {
    if (shards[shards.length - 1].length > 0 && current + t.data.byteLength > maxShardBytes) {
      shards.push([]);
      current = 0;
    }
    shards[shards.length - 1].push(t);
    current += t.data.byteLength;
  }

  let files: string[];
  if (totalSize <= maxShardBytes) {
    writeAtomic(path.join(dir, SINGLE_FILE), layout(prepared, metadata));
    files = [SINGLE_FILE];
  } else {
    const weightMap: Record<string, string> = {};
    files = shards.map((shard, i) => {
      const name = shardFileName(i + 1, shards.length);
      writeAtomic(path.join(dir, name), layout(shard, metadata));
      for (const t of shard) weightMap[t.name] = name;
      return name;
    });
    const sortedMap = Object.fromEntries(Object.entries(weightMap).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
    const index = { metadata: { total_size: totalSize }, weight_map: sortedMap };
    writeAtomic(path.join(dir, INDEX_FILE), [Buffer.from(`${JSON.stringify(index, null, 2)}\n`, 'utf8')]);
    files.push(INDEX_FILE);
  }

  const keep = new Set(files);
  for (const name of fs.readdirSync(dir)) {
    const stale = name === SINGLE_FILE || name === INDEX_FILE || SHARD_PATTERN.test(name);
    if (stale && !keep.has(name)) fs.rmSync(path.join(dir, name), { force: true });
  }
  return { files, totalSize };
}

function readIndex(file: string): Record<string, string> {
  const text = readTextFile(file);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new SafetensorsError('BAD_INDEX', file, `invalid JSON: ${(error as Error).message}`);
  }
  const weightMap = isRecord(json) ? json.weight_map : undefined;
  if (!isRecord(weightMap)) throw new SafetensorsError('BAD_INDEX', file, "no 'weight_map' object");
  const out: Record<string, string> = {};
  for (const [name, shard] of Object.entries(weightMap)) {
    // Shards are plain file names beside the index; anything else could point outside the checkpoint.
    if (typeof shard !== 'string' || shard !== path.basename(shard) || shard === '.' || shard === '..') {
      throw new SafetensorsError('BAD_INDEX', file, `weight_map entry '${name}' is not a shard file name: ${JSON.stringify(shard)}`);
    }
    out[name] = shard;
  }
  return out;
}

/**
 * Reads every tensor of a checkpoint directory: `model.safetensors`, or when `model.safetensors.index.json`
 * exists, each tensor of its `weight_map` from the shard it names (unmapped tensors in shards are ignored).
 */
export function readCheckpointTensors(dir: string): Map<string, StoredTensor> {
  const indexPath = path.join(dir, INDEX_FILE);
  if (!fs.existsSync(indexPath)) {
    const single = path.join(dir, SINGLE_FILE);
    if (!fs.existsSync(single)) throw new SafetensorsError('NO_CHECKPOINT', dir, `neither ${SINGLE_FILE} nor ${INDEX_FILE} exists`);
    return readSafetensors(single).tensors;
  }
  const weightMap = readIndex(indexPath);
  const shards = new Map<string, Map<string, StoredTensor>>();
  const out = new Map<string, StoredTensor>();
  for (const [name, shard] of Object.entries(weightMap)) {
    const shardPath = path.join(dir, shard);
    let tensors = shards.get(shard);
    if (!tensors) {
      if (!fs.existsSync(shardPath)) {
        const count = Object.values(weightMap).filter((s) => s === shard).length;
        throw new SafetensorsError(
          'MISSING_SHARD',
          shardPath,
          `shard named in ${INDEX_FILE} does not exist (it should hold ${count} tensors, e.g. '${name}')`,
        );
      }
      tensors = readSafetensors(shardPath).tensors;
      shards.set(shard, tensors);
    }
    const tensor = tensors.get(name);
    if (!tensor) throw new SafetensorsError('MISSING_TENSOR', shardPath, `no tensor '${name}', which ${INDEX_FILE} maps to this shard`);
    out.set(name, tensor);
  }
  return out;
}
