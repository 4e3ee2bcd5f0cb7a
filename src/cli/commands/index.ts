// The commands, one file per family (product, server, runs, phases, heartbeat, callback, units,
// completion), each a declarative `Command` (context.ts). This list is their order in the help
// output and the completion script.

import type { Command } from '../context.js';
import { callbackFlush } from './callback.js';
import { completionCommand } from './completion.js';
import { heartbeatCheckup, heartbeatGet } from './heartbeat.js';
import { phasesList } from './phases.js';
import { productGet, productSet, productUnset, productUpgrade } from './product.js';
import { runsBlame, runsList, runsShow } from './runs.js';
import { serverFacts, serverMode, serverProvision, serverRefresh, serverResume, serverStatus } from './server.js';
import { unitsInstall, unitsUninstall } from './units.js';

export const commands: readonly Command[] = [
  productGet,
  productSet,
  productUnset,
  serverMode,
  serverProvision,
  serverRefresh,
  productUpgrade,
  serverResume,
  phasesList,
  runsList,
  runsShow,
  runsBlame,
  serverFacts,
  heartbeatGet,
  heartbeatCheckup,
  callbackFlush,
  serverStatus,
  unitsInstall,
  unitsUninstall,
  completionCommand(() => commands),
];
