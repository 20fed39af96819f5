/** Every command and subcommand explains itself in --help with at least one example, as a technician needs. */
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { COMMANDS, registerCommands } from '../src/cli/commands.js';

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
    await registerCommands(program);
    const all = leaves(program);
    // The list comes from the program itself: a new command is checked without editing this test.
    expect(all.map((c) => c.path)).toEqual(expect.arrayContaining([...Object.keys(COMMANDS), 'buffer stats', 'buffer export']));
    expect(program.commands.map((c) => c.name()).sort()).toEqual(Object.keys(COMMANDS).sort());
    for (const { path, cmd } of all) expect(helpOf(cmd), path).toMatch(/\bExamples?:\n\s+(\$ )?(fieldgate|npm start)/);
  });
});
