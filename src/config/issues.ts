/** A problem found by a configuration rule, by the key path to blame; the loader turns paths into line and column. */

export type IssuePath = (string | number)[];

export interface RuleIssue {
  path: IssuePath;
  message: string;
}
