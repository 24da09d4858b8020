/**
 * Every sub-command of `ablate`, in the order `ablate --help` lists them. Command modules keep heavy
 * imports inside `run`, so `ablate --help` stays fast.
 */
import type { Command } from '../command';
import { baselineCommand } from './baseline';
import { artifactsCommand } from './artifacts';
import { cancelCommand } from './cancel';
import { compareCommand } from './compare';
import { dataCommand } from './data';
import { driftCommand } from './drift';
import { evalCommand } from './eval';
import { gcCommand } from './gc';
import { getCommand } from './get';
import { kindsCommand } from './kinds';
import { lineageCommand, verifyCommand } from './lineage';
import { planCommand } from './plan';
import { resumeCommand } from './resume';
import { plotCommand } from './plot';
import { reportCommand } from './report';
import { runCommand } from './run';
import { runsCommand } from './runs';
import { scheduleCommand } from './schedule';
import { serverCommand, uiCommand } from './server';
import { statusCommand } from './status';
import { validateCommand } from './validate';
import { workerCommand } from './worker';

export const commands: readonly Command[] = [
  validateCommand,
  planCommand,
  runCommand,
  statusCommand,
  cancelCommand,
  resumeCommand,
  runsCommand,
  scheduleCommand,
  workerCommand,
  serverCommand,
  uiCommand,
  lineageCommand,
  verifyCommand,
  baselineCommand,
  driftCommand,
  artifactsCommand,
  getCommand,
  gcCommand,
  reportCommand,
  compareCommand,
  plotCommand,
  dataCommand,
  evalCommand,
  kindsCommand,
];
