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
import { serverDisable, serverEnable, serverFacts, serverMode, serverProvision, serverRefresh, serverResume, serverStatus } from './server.js';
import { unitsInstall, unitsUninstall } from './units.js';
import { serverVerify } from './verify.js';

export const commands: readonly Command[] = [
  productGet,
  productSet,
  productUnset,
  serverMode,
  serverProvision,
  serverRefresh,
  productUpgrade,
  serverResume,
  serverVerify,
  phasesList,
  runsList,
  runsShow,
  runsBlame,
  serverFacts,
  heartbeatGet,
  heartbeatCheckup,
  callbackFlush,
  serverStatus,
  serverDisable,
  serverEnable,
  unitsInstall,
  unitsUninstall,
  completionCommand(() => commands),
];
