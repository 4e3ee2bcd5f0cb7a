// The tests check callback bodies against the published schema with the receiver's validator
// (receiver/src/json-schema.ts): one validator, the one a receiver runs.
export { validate } from '../../receiver/src/json-schema.js';
