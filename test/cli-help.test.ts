/** Every command and subcommand explains itself in --help with at least one example, as a technician needs. */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';

const MODULES = ['run', 'validate', 'read', 'write', 'scan', 'ports', 'simulate', 'tail', 'buffer', 'demo'];

function helpOf(cmd: Command): string {
  let text = '';
  cmd.configureOutput({ writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  cmd.outputHelp();
  return text;
}

function leaves(cmd: Command, path: string[] = []): Array<{ path: string; cmd: Command }> {
  return cmd.commands.flatMap((c) => {
    const p = [...path, c.name()];
    return [{ path: p.join(' '), cmd: c }, ...leaves(c, p)];
  });
}

describe('--help', () => {
  it('has an example for every command and subcommand', async () => {
    const program = new Command('fieldgate');
    for (const m of MODULES) ((await import(`../src/cli/${m}.ts`)) as { register(p: Command): void }).register(program);
    const all = leaves(program);
    expect(all.map((c) => c.path)).toEqual(expect.arrayContaining([...MODULES, 'buffer stats', 'buffer export']));
    for (const { path, cmd } of all) expect(helpOf(cmd), path).toMatch(/\bExamples?:\n\s+(\$ )?(fieldgate|npm start)/);
  });
});
