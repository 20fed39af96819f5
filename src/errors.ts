/**
 * A mistake the user can fix (bad config, unreachable target, bad flag). The CLI prints its message as one
 * line, without a stack trace, and exits with `exitCode`. Anything else is a bug and keeps its stack.
 */
export class UserError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
    /** Extra lines printed after the message (e.g. every config error). */
    readonly details: readonly string[] = [],
  ) {
    super(message);
    this.name = 'UserError';
  }
}
