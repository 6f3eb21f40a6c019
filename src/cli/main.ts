import { Command, CommanderError } from 'commander';
import { DeployStepError, exitCodeFor, KollaError } from '../errors.ts';
import { registerBuild } from './build-command.ts';
import { registerCloudCommands } from './cloud-commands.ts';
import { registerDeployCommands } from './deploy-commands.ts';
import { registerUpgradeCommands } from './upgrade-commands.ts';

export function createProgram(): Command {
  const program = new Command('kolla-ts')
    .description('build OpenStack container images and deploy them onto a fleet of hosts')
    .exitOverride()
    .showHelpAfterError();
  registerBuild(program);
  registerDeployCommands(program);
  registerUpgradeCommands(program);
  registerCloudCommands(program);
  return program;
}

/** Runs the CLI and returns the exit code; errors are printed once, here. */
export async function main(argv: string[]): Promise<number> {
  try {
    await createProgram().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : 2;
    if (!(error instanceof KollaError)) {
      console.error('kolla-ts: internal error:', error);
      return exitCodeFor(error);
    }
    console.error(`kolla-ts: error: ${error.message}`);
    if (error instanceof DeployStepError && error.logTail) {
      console.error(`--- last lines of ${error.container}'s log on ${error.host} ---\n${error.logTail}\n---`);
    }
    return exitCodeFor(error);
  }
}
