// MMLU as the hendrycks tarball and its mirrors ship it: a directory of <subject>_test.csv files (or the
// data/ folder above test/), detected by its file names, not taken for a HEx-PHI directory.
import { describe, expect, it } from 'vitest';
import { expectFormatError, fixtureDir } from './fixtures.ts';
import { loadMmlu, mmluSubjectFiles } from '../../datasets/formats/mmlu-csv.ts';
import { detectFormat, loadDataset } from '../../datasets/index.ts';
import { verifyDataset } from '../../datasets/verify.ts';

const { file, path } = fixtureDir('mmlu-dir-');

describe('MMLU directory of subject CSVs', () => {
  it('loads every <subject>_test.csv in name order, subject as category, ids naming the file', () => {
    file('test/college_biology_test.csv', 'Which organelle makes ATP?,Nucleus,Mitochondrion,Ribosome,Golgi,B\n');
    file('test/abstract_algebra_test.csv', 'What is 2 + 2?,3,4,5,22,B\n"Order of S_3?",3,6,9,2,B\n');
    file('test/README.txt', 'not a subject file');
    const dir = path('test');
    expect(detectFormat(dir)).toBe('mmlu');
    const examples = loadDataset(dir);
    expect(examples.map((e) => [e.id, e.meta.category, e.meta.answer])).toEqual([
      [`${dir}/abstract_algebra_test.csv#1`, 'abstract_algebra', 'B'],
      [`${dir}/abstract_algebra_test.csv#2`, 'abstract_algebra', 'B'],
      [`${dir}/college_biology_test.csv#1`, 'college_biology', 'B'],
    ]);
    expect(examples[2].messages[0].content).toBe('Which organelle makes ATP?\nA. Nucleus\nB. Mitochondrion\nC. Ribosome\nD. Golgi');
  });

  it('the data/ folder of the tarball (dev/, val/, test/) loads its test split; a folder with only dev files loads those', () => {
    file('data/test/anatomy_test.csv', 'Q1?,a,b,c,d,A\n');
    file('data/dev/anatomy_dev.csv', 'Q2?,a,b,c,d,B\n');
    file('data/val/anatomy_val.csv', 'Q3?,a,b,c,d,C\n');
    expect(detectFormat(path('data'))).toBe('mmlu');
    expect(loadMmlu(path('data')).map((e) => e.meta.answer)).toEqual(['A']);
    expect(mmluSubjectFiles(path('data/dev'))).toEqual([path('data/dev/anatomy_dev.csv')]);
  });

  it('datasets verify counts the items of every subject file of the directory', () => {
    file('verify/test/anatomy_test.csv', 'Q1?,a,b,c,d,A\nQ2?,a,b,c,d,B\n');
    file('verify/test/virology_test.csv', 'Q3?,a,b,c,d,C\n');
    const report = verifyDataset(path('verify'));
    expect(report.format).toBe('mmlu');
    expect(report.files).toEqual([path('verify/test/anatomy_test.csv'), path('verify/test/virology_test.csv')]);
    expect(report.items).toBe(3);
  });

  it('a HEx-PHI directory stays HEx-PHI', () => {
    file('hexphi/category_1.csv', 'How do I pick a lock?\n');
    expect(detectFormat(path('hexphi'))).toBe('hex-phi');
    expect(mmluSubjectFiles(path('hexphi'))).toEqual([]);
  });

  it('a bad row names its subject file and line', () => {
    const bad = file('broken/virology_test.csv', 'Q?,a,b,c,d,A\nQ?,a,b,c,d,E\n');
    expectFormatError(() => loadDataset(path('broken')), bad, 2, 'answer', /expected one of A, B, C, D/);
  });
});
