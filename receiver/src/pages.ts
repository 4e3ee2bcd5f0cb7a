// The receiver's HTML pages, rendered on the server from the same objects the JSON API returns
// (view.ts): one self-contained document each, no script, no external asset. The fleet page sorts
// and filters by query parameters; each server's page shows its last runs.

export { parseFleetQuery, renderFleetPage, sortServers, fleetSorts, serverStates, type FleetPageOptions, type FleetSort } from './pages/fleet.js';
export { renderServerPage, type ServerPageOptions } from './pages/server.js';
export { esc as escapeHtml, policy as pagePolicy } from './pages/html.js';
