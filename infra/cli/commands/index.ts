/**
 * Every sub-command of `ablate`, in the order `ablate --help` lists them. Command modules keep heavy
 * imports inside `run`, so `ablate --help` stays fast.
 */
import type { Command } from '../command';
import { kindsCommand } from './kinds';
import { planCommand } from './plan';
import { validateCommand } from './validate';

export const commands: readonly Command[] = [validateCommand, planCommand, kindsCommand];
