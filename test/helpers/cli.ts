/** Runs the real CLI (the bundle of this run, see cli-bundle.ts, or node bin/fieldgate.js), as a technician would. */
import { spawn } from 'node:child_process';
import { cliEntry } from './cli-bundle.js';

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function fieldgate(args: string[], timeoutMs = 20_000): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cliEntry(), ...args], { cwd: new URL('../..', import.meta.url).pathname });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`fieldgate ${args.join(' ')} did not finish: ${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

