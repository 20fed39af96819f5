/** docs/telemetry.schema.json as the tests check messages against it: by definition name, and as a whole. */
import { readFileSync } from 'node:fs';
import { Ajv, type ValidateFunction } from 'ajv';
import { expect } from 'vitest';

const schema = JSON.parse(readFileSync(new URL('../../docs/telemetry.schema.json', import.meta.url), 'utf8'));
export const ajv = new Ajv({ strict: true, strictTuples: false, allowUnionTypes: true, allErrors: true });
ajv.addSchema(schema);
export const validator = (name: string): ValidateFunction => ajv.getSchema(`urn:fieldgate:payload:v1#/definitions/${name}`)!;
export const validateAny = ajv.getSchema('urn:fieldgate:payload:v1')!;

/** The text is valid against the named definition and against the schema as a whole. */
export function expectValid(validate: ValidateFunction, text: string): void {
  const ok = validate(JSON.parse(text));
  if (!ok) throw new Error(`${text.slice(0, 300)}\n${ajv.errorsText(validate.errors)}`);
  expect(validateAny(JSON.parse(text)), ajv.errorsText(validateAny.errors)).toBe(true);
}
