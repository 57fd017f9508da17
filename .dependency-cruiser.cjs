// The layering rule, enforced (docs/architecture.md): imports point down only.
//   engine/  <  datasets/ threats/ strategies/ guardrails/ (plug-ins)  <  results/  <  reports/  <  harness/
// bench/, bin/ and test/ sit outside the layers and may import anything; no source file imports a test file.
const plugins = '(datasets|threats|strategies|guardrails)';

/** Forbid imports from `from` into anything but the folders allowed for it. */
const only = (name, from, allowed, comment) => ({
  name,
  comment,
  severity: 'error',
  from: { path: `^${from}/` },
  to: { path: '^[^/]+/', pathNot: [`^(${allowed.join('|')})/`, '(^|/)node_modules/'] },
});

module.exports = {
  forbidden: [
    only('engine-imports-nothing', 'engine', ['engine'], 'engine/ is the ground floor: it imports nothing else of the project.'),
    {
      name: 'plugins-import-engine-and-self',
      comment: 'A plug-in folder imports only engine/ and its own folder.',
      severity: 'error',
      from: { path: `^${plugins}/` },
      to: { path: '^[^/]+/', pathNot: ['^engine/', '^$1/', '(^|/)node_modules/'] },
    },
    only('results-import-engine', 'results', ['engine', 'results'], 'results/ (the result schema) sits below reports/ and harness/.'),
    only('reports-import-below', 'reports', ['engine', 'results', 'reports'], 'reports/ reads results through results/, never harness/.'),
    {
      name: 'no-cycle-between-folders',
      comment: 'No import cycle that crosses top-level folders (the layer rules above already order the source folders).',
      severity: 'error',
      from: { path: '^([^/]+)/' },
      to: { path: '^[^/]+/', pathNot: '^$1/', circular: true },
    },
    {
      name: 'no-test-from-source',
      comment: 'Source never imports a test file or test helper.',
      severity: 'error',
      from: { pathNot: '^test/' },
      to: { path: '(^test/|\\.test\\.ts$)' },
    },
    {
      name: 'no-unresolvable',
      comment: 'Every relative import resolves to a file.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)node_modules/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default'],
      extensions: ['.ts', '.js', '.mjs'],
    },
  },
};
