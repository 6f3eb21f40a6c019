import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import { TemplateError } from '../errors.ts';
import { DOCKERFILE_TEMPLATE, type ImageSource, type ServiceUser } from './images.ts';
import type { ImageOverride } from './overrides.ts';

export interface RenderContext {
  base_image: string;
  image_prefix: string;
  tag: string;
}

export interface RenderedImage {
  name: string;
  dockerfile: string;
  /** The image reference on the FROM line (the last FROM, for multi-stage files). */
  from: string;
}

const EMPTY_OVERRIDE: ImageOverride = { blocks: {}, packagesAdd: [], packagesRemove: [] };

export function renderDockerfile(
  image: ImageSource,
  context: RenderContext,
  users: readonly ServiceUser[],
  override: ImageOverride = EMPTY_OVERRIDE,
): RenderedImage {
  const file = join(image.dir, DOCKERFILE_TEMPLATE);
  const source = readFileSync(file, 'utf8');
  const blocksSeen = new Set<string>();
  let installCalls = 0;

  const hbs = Handlebars.create();
  hbs.registerHelper('block', function (this: unknown, name: unknown, options: Handlebars.HelperOptions) {
    if (typeof name !== 'string') throw new Error('block needs a name: {{#block "header"}}...{{/block}}');
    blocksSeen.add(name);
    const replacement = override.blocks[name];
    return replacement ? replacement.content.replace(/\n?$/, '\n') : options.fn(this);
  });
  hbs.registerHelper('install_packages', (...args: unknown[]) => {
    const packages = args.slice(0, -1).map(String);
    // Added packages go to the first install line; removed ones leave every line.
    const wanted = [...packages, ...(installCalls++ === 0 ? override.packagesAdd : [])].filter((p) => !override.packagesRemove.includes(p));
    if (wanted.length === 0) return '';
    return (
      'RUN apt-get update \\\n' +
      `    && apt-get install -y --no-install-recommends ${[...new Set(wanted)].join(' ')} \\\n` +
      '    && apt-get clean \\\n' +
      '    && rm -rf /var/lib/apt/lists/*'
    );
  });
  hbs.registerHelper('create_users', () => createUsersCommand(users));

  let dockerfile: string;
  try {
    const template = hbs.compile(source, { noEscape: true, strict: true });
    dockerfile = template(context);
  } catch (error) {
    throw new TemplateError(`cannot render: ${describeHandlebarsError(error)}`, { file, line: handlebarsLine(error) });
  }

  for (const block of Object.keys(override.blocks)) {
    if (!blocksSeen.has(block)) {
      const known = [...blocksSeen].sort().join(', ') || 'none';
      throw new TemplateError(`override for image "${image.name}" names block "${block}", which its Dockerfile does not have (blocks: ${known})`, {
        file: override.blocks[block]!.source,
      });
    }
  }
  if (installCalls === 0 && override.packagesAdd.length > 0) {
    throw new TemplateError(`override adds packages to image "${image.name}", whose Dockerfile has no install_packages line`, { file });
  }

  const fromLines = [...dockerfile.matchAll(/^\s*FROM\s+(\S+)/gim)];
  const from = fromLines.at(-1)?.[1];
  if (!from) throw new TemplateError('the rendered Dockerfile has no FROM line', { file });
  return { name: image.name, dockerfile, from };
}

function createUsersCommand(users: readonly ServiceUser[]): string {
  // Groups first (a user may join another user's group), then users.
  // A user whose gid another user already owns joins that group.
  const groups = new Map<number, string>();
  for (const user of users) if (!groups.has(user.gid)) groups.set(user.gid, user.name);
  const steps: string[] = [];
  for (const [gid, name] of groups) steps.push(`(getent group ${name} >/dev/null || groupadd --gid ${gid} ${name})`);
  for (const user of users) {
    const extra = user.groups.length ? ` --groups ${user.groups.join(',')}` : '';
    steps.push(
      `(id -u ${user.name} >/dev/null 2>&1 || useradd --uid ${user.uid} --gid ${user.gid} --home-dir ${user.home} --no-create-home --shell /usr/sbin/nologin${extra} ${user.name})`,
    );
  }
  return `RUN ${steps.join(' \\\n    && ')}`;
}

function describeHandlebarsError(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
}

function handlebarsLine(error: unknown): number | undefined {
  const message = error instanceof Error ? error.message : '';
  const parse = /on line (\d+)/.exec(message);
  if (parse) return Number(parse[1]);
  const runtime = / - (\d+):\d+$/.exec(message.split('\n')[0]!);
  if (runtime) return Number(runtime[1]);
  const lineNumber = (error as { lineNumber?: number } | null)?.lineNumber;
  return typeof lineNumber === 'number' ? lineNumber : undefined;
}
