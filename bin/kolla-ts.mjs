#!/usr/bin/env node
// Runs the TypeScript sources directly: no build step between a clone and a working CLI.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/main.ts');
// Exit now: a connection some failed host left half-open must not keep the CLI waiting.
// (Writes to pipes and files are synchronous on Linux, so nothing printed is lost.)
process.exit(await main(process.argv.slice(2)));
