/**
 * Every sub-command of `ablate`, in the order `ablate --help` lists them. Command modules keep heavy
 * imports inside `run`, so `ablate --help` stays fast.
 */
import type { Command } from '../command';
import { dataCommand } from './data';
import { evalCommand } from './eval';
import { kindsCommand } from './kinds';

export const commands: readonly Command[] = [kindsCommand, dataCommand, evalCommand];
