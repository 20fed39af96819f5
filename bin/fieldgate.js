#!/usr/bin/env node
// Runs the TypeScript sources directly through tsx, so `npx fieldgate` works in a checkout right after `npm ci`.
import { register } from 'tsx/esm/api';

register();
await import('../src/cli/main.ts');
