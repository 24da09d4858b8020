/**
 * Every sub-command of `ablate`, in the order `ablate --help` lists them. Command modules keep heavy
 * imports inside `run`, so `ablate --help` stays fast.
 */
import type { Command } from '../command';
import { cancelCommand } from './cancel';
import { compareCommand } from './compare';
import { dataCommand } from './data';
import { evalCommand } from './eval';
import { kindsCommand } from './kinds';
import { lineageCommand, verifyCommand } from './lineage';
import { planCommand } from './plan';
import { plotCommand } from './plot';
import { reportCommand } from './report';
import { runCommand } from './run';
import { runsCommand } from './runs';
import { statusCommand } from './status';
import { validateCommand } from './validate';
import { workerCommand } from './worker';

export const commands: readonly Command[] = [
  validateCommand,
  planCommand,
  runCommand,
  statusCommand,
  cancelCommand,
  runsCommand,
  workerCommand,
  lineageCommand,
  verifyCommand,
  reportCommand,
  compareCommand,
  plotCommand,
  dataCommand,
  evalCommand,
  kindsCommand,
];
