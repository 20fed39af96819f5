/** The outbox: durable store-and-forward buffer between acquisition and the uplink. */
export { Outbox } from './store.js';
export { OutboxReader } from './reader.js';
export { OutboxError, type OutboxErrorCode } from './errors.js';
export * from './types.js';
