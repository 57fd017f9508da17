#!/usr/bin/env node
// The star-dss command: runs the TypeScript sources directly through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
const { main } = await import(new URL('../harness/cli.ts', import.meta.url).href);
await main(process.argv.slice(2));
