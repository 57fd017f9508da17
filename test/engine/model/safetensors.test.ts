import { describe, it, expect, beforeEach, afterEach } from 'vitest';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  SafetensorsError,
  parseSafetensors,
  readCheckpointTensors,
  readSafetensors,
  writeCheckpointTensors,
  writeSafetensors,
  type SafetensorsErrorCode,
  type StoredTensor,
} from '../../../engine/model/safetensors.ts';

let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'safetensors-test-'));
});
afterEach(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Builds a safetensors file by hand: u64 LE length, header (object, text or raw bytes; optionally space-padded to 8), data. */
function build(header: unknown, data: Uint8Array = new Uint8Array(0), padTo8 = false): Buffer {
  let json: Buffer;
  if (Buffer.isBuffer(header)) json = header;
  else {
    let text = typeof header === 'string' ? header : JSON.stringify(header);
    if (padTo8) while (Buffer.byteLength(text) % 8 !== 0) text += ' ';
    json = Buffer.from(text, 'utf8');
  }
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(json.length));
  return Buffer.concat([prefix, json, data]);
}

function put(name: string, bytes: Uint8Array): string {
  const file = path.join(dir, name);
  fs.writeFileSync(file, bytes);
  return file;
}

/** Little-endian u16 values as bytes. */
function u16(values: number[]): Buffer {
  const b = Buffer.alloc(values.length * 2);
  values.forEach((v, i) => b.writeUInt16LE(v, i * 2));
  return b;
}

function f32FromBits(bits: number[]): Float32Array {
  return new Float32Array(Uint32Array.from(bits).buffer);
}

function bitsOf(data: StoredTensor['data']): number[] {
  expect(data).toBeInstanceOf(Float32Array);
  return [...new Uint32Array(data.buffer, data.byteOffset, data.length)];
}

describe('F32/I32/I64 round trip', () => {
  it('keeps F32 bits exactly (NaN payloads, -0, denormals, inf) and other dtypes and metadata', () => {
    const bits = [0x7fc00001, 0xffc12345, 0x7f800001, 0x80000000, 0x00000001, 0x807fffff, 0x7f800000, 0xff800000, 0x3f800000, 0xc0490fdb];
    const tensors = new Map([
      ['w', { shape: [2, 5], data: f32FromBits(bits) }],
      ['ids', { shape: [3], data: Int32Array.from([-2147483648, 0, 2147483647]) }],
      ['big', { shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 62n + 7n]) }],
      ['scalar', { shape: [], data: Float32Array.from([2.5]) }],
      ['empty', { shape: [0, 3], data: new Float32Array(0) }],
    ]);
    const file = path.join(dir, 'a.safetensors');
    writeSafetensors(file, tensors, { note: 'hi' });
    const { tensors: back, metadata } = readSafetensors(file);

    expect(metadata).toEqual({ format: 'pt', note: 'hi' });
    expect([...back.keys()].sort()).toEqual(['big', 'empty', 'ids', 'scalar', 'w']);
    const w = back.get('w');
    expect(w?.dtype).toBe('F32');
    expect(w?.shape).toEqual([2, 5]);
    expect(bitsOf(w!.data)).toEqual(bits);
    expect(back.get('ids')).toEqual({ dtype: 'I32', shape: [3], data: Int32Array.from([-2147483648, 0, 2147483647]) });
    expect(back.get('big')).toEqual({ dtype: 'I64', shape: [2], data: BigInt64Array.from([-(2n ** 63n), 2n ** 62n + 7n]) });
    expect(back.get('scalar')).toEqual({ dtype: 'F32', shape: [], data: Float32Array.from([2.5]) });
    expect(back.get('empty')).toEqual({ dtype: 'F32', shape: [0, 3], data: new Float32Array(0) });
  });

  it('writes a subarray view (non-zero byteOffset) correctly and accepts an entries array', () => {
    const backing = Float32Array.from([9, 1, 2, 3, 9]);
    const file = path.join(dir, 'view.safetensors');
    writeSafetensors(file, [['v', { shape: [3], data: backing.subarray(1, 4) }]]);
    expect(readSafetensors(file).tensors.get('v')?.data).toEqual(Float32Array.from([1, 2, 3]));
  });

  it('parses the same bytes from memory as from the file', () => {
    const file = path.join(dir, 'mem.safetensors');
    writeSafetensors(file, new Map([['x', { shape: [2], data: Float32Array.from([1.5, -3]) }]]));
    const fromBytes = parseSafetensors(fs.readFileSync(file));
    expect(fromBytes).toEqual(readSafetensors(file));
  });
});

describe('an independent parse of our writer output', () => {
  it('has an 8-aligned space-padded header, names sorted, contiguous offsets and the raw bytes', () => {
    const names = ['lm_head.weight', 'a.bias', 'model.norm.weight', 'B_upper', 'model.embed_tokens.weight'];
    const tensors = new Map(
      names.map((n, i) => [n, { shape: [i + 1, 2], data: Float32Array.from({ length: 2 * (i + 1) }, (_, j) => i * 10 + j + 0.25) }]),
    );
    const file = path.join(dir, 'x.safetensors');
    writeSafetensors(file, tensors);
    const buf = fs.readFileSync(file);

    const n = Number(buf.readBigUInt64LE(0));
    expect((8 + n) % 8).toBe(0);
    const text = buf.toString('utf8', 8, 8 + n);
    expect(text.startsWith('{')).toBe(true);
    expect(/^\{.*\} *$/s.test(text)).toBe(true);
    const header = JSON.parse(text) as Record<string, { dtype: string; shape: number[]; data_offsets: [number, number] }>;
    expect(header.__metadata__).toEqual({ format: 'pt' });

    const keys = Object.keys(header).filter((k) => k !== '__metadata__');
    expect(keys).toEqual(['B_upper', 'a.bias', 'lm_head.weight', 'model.embed_tokens.weight', 'model.norm.weight']);
    let cursor = 0;
    for (const key of keys) {
      const {
        dtype,
        shape,
        data_offsets: [begin, end],
      } = header[key];
      const source = tensors.get(key)!;
      expect(dtype).toBe('F32');
      expect(shape).toEqual(source.shape);
      expect(begin).toBe(cursor);
      expect(end - begin).toBe(shape[0] * shape[1] * 4);
      const bytes = buf.subarray(8 + n + begin, 8 + n + end);
      expect(Buffer.compare(bytes, Buffer.from(source.data.buffer))).toBe(0);
      cursor = end;
    }
    expect(8 + n + cursor).toBe(buf.length);
  });

  it('keeps sorted order for integer-like names, which plain JS objects would reorder', () => {
    const file = path.join(dir, 'ints.safetensors');
    writeSafetensors(
      file,
      new Map([
        ['b', { shape: [1], data: Float32Array.from([1]) }],
        ['10', { shape: [1], data: Float32Array.from([2]) }],
        ['2', { shape: [1], data: Float32Array.from([3]) }],
      ]),
    );
    const buf = fs.readFileSync(file);
    const text = buf.toString('utf8', 8, 8 + Number(buf.readBigUInt64LE(0)));
    const order = [...text.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
    expect(order).toEqual(['10', '2', 'b']);
    expect(text.indexOf('"10"')).toBeLessThan(text.indexOf('"2"'));
    expect(text).toContain('"10":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}');
    expect(text).toContain('"2":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}');
  });
});

describe('half-precision decoding (hand-built bytes)', () => {
  it('decodes F16 exactly: normals, subnormals, signed zero, inf, NaN', () => {
    const halves = [0x3c00, 0xc000, 0x7c00, 0xfc00, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x8000, 0x3555, 0x8001, 0x7e00, 0xfe01];
    const file = put(
      'f16.safetensors',
      build({ h: { dtype: 'F16', shape: [halves.length], data_offsets: [0, 2 * halves.length] } }, u16(halves)),
    );
    const t = readSafetensors(file).tensors.get('h')!;
    expect(t.dtype).toBe('F16');
    expect(t.shape).toEqual([13]);
    const v = [...t.data] as number[];
    expect(v.slice(0, 11)).toEqual([1, -2, Infinity, -Infinity, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, 65504, -0, 1365 / 4096, -(2 ** -24)]);
    expect(Object.is(v[8], -0)).toBe(true);
    // 0x3555 = exponent 13, mantissa 0x155 → (1 + 341/1024) · 2^-2 = 1365/4096.
    expect(v[9]).toBe((1 + 341 / 1024) / 4);
    // NaNs: exponent all ones, mantissa moved up 13 bits, sign kept.
    const bits = bitsOf(t.data);
    expect(bits[11]).toBe(0x7fc00000);
    expect(bits[12]).toBe(0xffc02000);
  });

  it('decodes BF16 as the upper 16 bits of an F32', () => {
    const halves = [0x3f80, 0xc000, 0x7f80, 0x0001, 0x4049, 0x8000, 0x7fc1];
    const file = put('bf16.safetensors', build({ b: { dtype: 'BF16', shape: [7], data_offsets: [0, 14] } }, u16(halves)));
    const t = readSafetensors(file).tensors.get('b')!;
    expect(t.dtype).toBe('BF16');
    const v = [...t.data] as number[];
    // 0x4049 → sign 0, exponent 0x80 (=1), mantissa 0x49 << 16 → (1 + 0x49/128) · 2 = 3.140625.
    expect(v.slice(0, 6)).toEqual([1, -2, Infinity, 2 ** -133, 3.140625, -0]);
    expect(Object.is(v[5], -0)).toBe(true);
    expect(bitsOf(t.data)[6]).toBe(0x7fc10000);
  });

  it('converts F64 by rounding and widens small integer types and BOOL to Int32Array', () => {
    const f64 = Buffer.alloc(16);
    f64.writeDoubleLE(1 / 3, 0);
    f64.writeDoubleLE(-1e300, 8);
    const i16 = Buffer.alloc(4);
    i16.writeInt16LE(-2, 0);
    i16.writeInt16LE(32767, 2);
    const data = Buffer.concat([f64, i16, u16([65535]), Buffer.from([0xff, 0x7f]), Buffer.from([200]), Buffer.from([0, 1, 2])]);
    const header = {
      d: { dtype: 'F64', shape: [2], data_offsets: [0, 16] },
      s: { dtype: 'I16', shape: [2], data_offsets: [16, 20] },
      u: { dtype: 'U16', shape: [1], data_offsets: [20, 22] },
      c: { dtype: 'I8', shape: [2], data_offsets: [22, 24] },
      b: { dtype: 'U8', shape: [1], data_offsets: [24, 25] },
      m: { dtype: 'BOOL', shape: [3], data_offsets: [25, 28] },
    };
    const t = readSafetensors(put('mixed.safetensors', build(header, data))).tensors;
    expect(t.get('d')).toEqual({ dtype: 'F64', shape: [2], data: Float32Array.from([Math.fround(1 / 3), -Infinity]) });
    expect(t.get('s')).toEqual({ dtype: 'I16', shape: [2], data: Int32Array.from([-2, 32767]) });
    expect(t.get('u')).toEqual({ dtype: 'U16', shape: [1], data: Int32Array.from([65535]) });
    expect(t.get('c')).toEqual({ dtype: 'I8', shape: [2], data: Int32Array.from([-1, 127]) });
    expect(t.get('b')).toEqual({ dtype: 'U8', shape: [1], data: Int32Array.from([200]) });
    expect(t.get('m')).toEqual({ dtype: 'BOOL', shape: [3], data: Int32Array.from([0, 1, 1]) });
  });
});

describe('header padding and alignment', () => {
  it('reads a header padded with spaces, and an unpadded header whose data starts unaligned', () => {
    const data = Buffer.from(Float32Array.from([1, -0.5, 3]).buffer);
    const header = { __metadata__: { format: 'pt' }, x: { dtype: 'F32', shape: [3], data_offsets: [0, 12] } };
    const padded = build(header, data, true);
    expect(padded.readBigUInt64LE(0) % 8n).toBe(0n);
    expect(padded.toString('utf8', 8, 8 + Number(padded.readBigUInt64LE(0))).endsWith(' ')).toBe(true);
    const unpadded = build(`${JSON.stringify(header)} `, data); // odd length → data at an odd byte
    expect(Number(unpadded.readBigUInt64LE(0)) % 4).not.toBe(0);
    for (const bytes of [padded, unpadded]) {
      const { tensors, metadata } = readSafetensors(put('p.safetensors', bytes));
      expect(metadata).toEqual({ format: 'pt' });
      expect(tensors.get('x')?.data).toEqual(Float32Array.from([1, -0.5, 3]));
    }
  });
});

describe('checkpoint directories', () => {
  const make = () =>
    new Map([
      ['model.embed_tokens.weight', { shape: [10, 4], data: Float32Array.from({ length: 40 }, (_, i) => i / 7) }], // 160 B
      ['model.layers.0.mlp.weight', { shape: [4, 4], data: Float32Array.from({ length: 16 }, (_, i) => -i) }], // 64 B
      ['model.layers.1.mlp.weight', { shape: [4, 4], data: Float32Array.from({ length: 16 }, (_, i) => i * 1.5) }], // 64 B
      ['model.norm.weight', { shape: [4], data: Float32Array.from([1, 2, 3, 4]) }], // 16 B
      ['lm_head.weight', { shape: [10, 4], data: Float32Array.from({ length: 40 }, (_, i) => Math.sin(i)) }], // 160 B
    ]);

  it('writes one model.safetensors when under the shard size', () => {
    const tensors = make();
    const written = writeCheckpointTensors(dir, tensors);
    expect(written).toEqual({ files: ['model.safetensors'], totalSize: 464 });
    expect(fs.readdirSync(dir)).toEqual(['model.safetensors']);
    const back = readCheckpointTensors(dir);
    expect(new Map([...back].map(([k, v]) => [k, { shape: v.shape, data: v.data }]))).toEqual(tensors);
  });

  it('shards in input order with transformers names and an index with total_size', () => {
    const tensors = make();
    // Greedy in input order with 200 B: [embed] 160 (+64 > 200); [layer0, layer1, norm] 144 (+160 > 200); [lm_head] 160 → 3 shards.
    writeCheckpointTensors(dir, tensors, { maxShardBytes: 200 });
    const files = fs.readdirSync(dir).sort();
    expect(files).toEqual([
      'model-00001-of-00003.safetensors',
      'model-00002-of-00003.safetensors',
      'model-00003-of-00003.safetensors',
      'model.safetensors.index.json',
    ]);
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    expect(index).toEqual({
      metadata: { total_size: 160 + 64 + 64 + 16 + 160 },
      weight_map: {
        'lm_head.weight': 'model-00003-of-00003.safetensors',
        'model.embed_tokens.weight': 'model-00001-of-00003.safetensors',
        'model.layers.0.mlp.weight': 'model-00002-of-00003.safetensors',
        'model.layers.1.mlp.weight': 'model-00002-of-00003.safetensors',
        'model.norm.weight': 'model-00002-of-00003.safetensors',
      },
    });
    expect(Object.keys(index.weight_map)).toEqual([...Object.keys(index.weight_map)].sort());
    // Each shard holds exactly its tensors and the format metadata.
    const shard2 = readSafetensors(path.join(dir, 'model-00002-of-00003.safetensors'));
    expect([...shard2.tensors.keys()]).toEqual(['model.layers.0.mlp.weight', 'model.layers.1.mlp.weight', 'model.norm.weight']);
    expect(shard2.metadata).toEqual({ format: 'pt' });

    const back = readCheckpointTensors(dir);
    expect(back.size).toBe(5);
    for (const [name, t] of tensors) {
      expect(back.get(name)).toEqual({ dtype: 'F32', shape: t.shape, data: t.data });
    }
  });

  it('gives an oversized tensor its own shard', () => {
    writeCheckpointTensors(dir, make(), { maxShardBytes: 100 });
    const index = JSON.parse(fs.readFileSync(path.join(dir, 'model.safetensors.index.json'), 'utf8'));
    // 160 | 64 | 64+16 | 160 → 4 shards.
    expect(new Set(Object.values(index.weight_map)).size).toBe(4);
    expect(index.weight_map['model.norm.weight']).toBe(index.weight_map['model.layers.1.mlp.weight']);
  });

  it('switching layouts removes the files of the old one', () => {
    writeCheckpointTensors(dir, make(), { maxShardBytes: 100 });
    const small = new Map([['only', { shape: [2], data: Float32Array.from([7, 8]) }]]);
    writeCheckpointTensors(dir, small);
    expect(fs.readdirSync(dir)).toEqual(['model.safetensors']);
    expect(readCheckpointTensors(dir).get('only')?.data).toEqual(Float32Array.from([7, 8]));

    fs.writeFileSync(path.join(dir, 'config.json'), '{}'); // unrelated files are kept
    writeCheckpointTensors(dir, make(), { maxShardBytes: 300 });
    expect(fs.readdirSync(dir).sort()).toEqual([
      'config.json',
      'model-00001-of-00002.safetensors',
      'model-00002-of-00002.safetensors',
      'model.safetensors.index.json',
    ]);
    expect(readCheckpointTensors(dir).has('only')).toBe(false);
  });

  it('leaves no .tmp file behind, and a rejected write leaves the old file untouched', () => {
    const file = path.join(dir, 'model.safetensors');
    writeSafetensors(file, new Map([['a', { shape: [1], data: Float32Array.from([1]) }]]));
    writeCheckpointTensors(dir, make(), { maxShardBytes: 200 });
    writeCheckpointTensors(dir, make());
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
    const before = fs.readFileSync(file);
    expect(() => writeSafetensors(file, new Map([['a', { shape: [3], data: Float32Array.from([1]) }]]))).toThrow(
      "cannot write tensor 'a': shape [3] holds 3 elements but data has 1",
    );
    expect(fs.readFileSync(file)).toEqual(before);
    expect(fs.readdirSync(dir).filter((f) => f.includes('.tmp'))).toEqual([]);
  });
});

describe('malformed files give one-line SafetensorsErrors', () => {
  const f32 = (n: number) => Buffer.alloc(4 * n);
  const cases: [string, () => Buffer, SafetensorsErrorCode, string][] = [
    ['shorter than 8 bytes', () => Buffer.from([1, 0, 0]), 'TRUNCATED', 'file has 3 bytes, fewer than the 8-byte header length'],
    [
      'header length larger than the file',
      () => {
        const b = build({ x: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(1));
        b.writeBigUInt64LE(1000n, 0);
        return b;
      },
      'HEADER_LENGTH',
      'header length 1000 is larger than the',
    ],
    ['invalid JSON', () => build('{"x": {"dtype": "F32",'), 'HEADER_JSON', 'invalid JSON header'],
    ['invalid UTF-8', () => build(Buffer.from([0x7b, 0xff, 0x7d])), 'HEADER_JSON', 'invalid JSON header'],
    ['a JSON array', () => build('[1, 2]'), 'HEADER_JSON', 'the JSON header is not an object'],
    [
      'an entry without shape',
      () => build({ x: { dtype: 'F32', data_offsets: [0, 4] } }, f32(1)),
      'HEADER_JSON',
      "tensor 'x' in the header has no 'shape'",
    ],
    ['non-string metadata', () => build({ __metadata__: { step: 3 } }), 'HEADER_JSON', "__metadata__ value of 'step' is not a string"],
    [
      'an unknown dtype',
      () => build({ x: { dtype: 'F33', shape: [1], data_offsets: [0, 4] } }, f32(1)),
      'UNKNOWN_DTYPE',
      "tensor 'x' has unknown dtype 'F33'",
    ],
    [
      'an FP8 dtype',
      () => build({ x: { dtype: 'F8_E4M3', shape: [4], data_offsets: [0, 4] } }, f32(1)),
      'UNSUPPORTED_DTYPE',
      "tensor 'x' has dtype F8_E4M3, which this reader does not decode",
    ],
    [
      'a size that does not match shape × dtype',
      () => build({ x: { dtype: 'F32', shape: [2, 3], data_offsets: [0, 20] } }, Buffer.alloc(20)),
      'SIZE_MISMATCH',
      "tensor 'x' of shape [2, 3] and dtype F32 needs 24 bytes but data_offsets [0, 20] span 20",
    ],
    ['begin > end', () => build({ x: { dtype: 'F32', shape: [0], data_offsets: [8, 4] } }, f32(2)), 'BAD_OFFSETS', 'with begin > end'],
    [
      'overlapping tensors',
      () =>
        build({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(3)),
      'BAD_OFFSETS',
      "tensor 'b' [4, 12] overlaps tensor 'a' [0, 8]",
    ],
    [
      'offsets out of range (a gap past the end)',
      () =>
        build({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [1], data_offsets: [100, 104] } }, f32(2)),
      'BAD_OFFSETS',
      "data bytes [4, 100) before tensor 'b' belong to no tensor",
    ],
    [
      'trailing bytes',
      () => build({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] } }, f32(2)),
      'BAD_OFFSETS',
      '4 trailing data bytes after the last tensor',
    ],
    [
      'truncated data',
      () =>
        build({ a: { dtype: 'F32', shape: [1], data_offsets: [0, 4] }, b: { dtype: 'F32', shape: [3], data_offsets: [4, 16] } }, f32(3)),
      'TRUNCATED',
      'tensors need 16 data bytes after the header but the file holds 12 (truncated file)',
    ],
  ];

  it.each(cases)('%s', (_label, bytes, code, message) => {
    const file = put('bad.safetensors', bytes());
    let caught: unknown;
    try {
      readSafetensors(file);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SafetensorsError);
    const error = caught as SafetensorsError;
    expect(error.code).toBe(code);
    expect(error.file).toBe(file);
    expect(error.message.startsWith(`${file}: `)).toBe(true);
    expect(error.message).toContain(message);
    expect(error.message).not.toMatch(/[\r\n]/);
  });

  it('a file cut short after our writer produced it is TRUNCATED', () => {
    const file = path.join(dir, 'cut.safetensors');
    writeSafetensors(file, new Map([['x', { shape: [8], data: new Float32Array(8) }]]));
    fs.truncateSync(file, fs.statSync(file).size - 3);
    expect(() => readSafetensors(file)).toThrow(expect.objectContaining({ code: 'TRUNCATED', file }));
  });

  const checkpointCases: [string, () => void, SafetensorsErrorCode, string, string][] = [
    ['an empty directory', () => {}, 'NO_CHECKPOINT', '', 'neither model.safetensors nor model.safetensors.index.json exists'],
    [
      'an index that is not JSON',
      () => fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), '{oops'),
      'BAD_INDEX',
      'model.safetensors.index.json',
      'invalid JSON',
    ],
    [
      'an index pointing outside the directory',
      () => fs.writeFileSync(path.join(dir, 'model.safetensors.index.json'), JSON.stringify({ weight_map: { a: '../x.safetensors' } })),
      'BAD_INDEX',
      'model.safetensors.index.json',
      "weight_map entry 'a' is not a shard file name",
    ],
    [
      'a missing shard',
      () => {
        writeCheckpointTensors(
          dir,
          new Map([
            ['a', { shape: [2], data: new Float32Array(2) }],
            ['b', { shape: [2], data: new Float32Array(2) }],
          ]),
          { maxShardBytes: 8 },
        );
        fs.rmSync(path.join(dir, 'model-00002-of-00002.safetensors'));
      },
      'MISSING_SHARD',
      'model-00002-of-00002.safetensors',
      "shard named in model.safetensors.index.json does not exist (it should hold 1 tensors, e.g. 'b')",
    ],
    [
      'a mapped name absent from its shard',
      () => {
        writeCheckpointTensors(
          dir,
          new Map([
            ['a', { shape: [2], data: new Float32Array(2) }],
            ['b', { shape: [2], data: new Float32Array(2) }],
          ]),
          { maxShardBytes: 8 },
        );
        const indexFile = path.join(dir, 'model.safetensors.index.json');
        const index = JSON.parse(fs.readFileSync(indexFile, 'utf8'));
        index.weight_map.c = 'model-00001-of-00002.safetensors';
        fs.writeFileSync(indexFile, JSON.stringify(index));
      },
      'MISSING_TENSOR',
      'model-00001-of-00002.safetensors',
      "no tensor 'c', which model.safetensors.index.json maps to this shard",
    ],
  ];

  it.each(checkpointCases)('checkpoint with %s', (_label, setup, code, fileName, message) => {
    setup();
    let caught: unknown;
    try {
      readCheckpointTensors(dir);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(SafetensorsError);
    const error = caught as SafetensorsError;
    expect(error.code).toBe(code);
    expect(error.file).toBe(fileName ? path.join(dir, fileName) : dir);
    expect(error.message).toContain(message);
    expect(error.message).not.toMatch(/[\r\n]/);
  });
});
