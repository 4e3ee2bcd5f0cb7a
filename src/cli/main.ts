// Entry of the bundle that bin/bootstrap loads.
export { main } from './cli.js';
