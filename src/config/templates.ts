import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import Handlebars from 'handlebars';
import { TemplateError } from '../errors.ts';
import { iniValue, jsonString, myCnfValue, shellQuote, sqlString, urlComponent } from '../util/escape.ts';

export type TemplateContext = Record<string, unknown>;

/**
 * Renders config templates: strict (a missing variable is an error naming
 * the template and line) and without HTML escaping (these are config files).
 */
export class ConfigRenderer {
  private readonly hbs = Handlebars.create();
  private readonly compiled = new Map<string, HandlebarsTemplateDelegate>();

  constructor(private readonly templatesDir: string) {
    this.hbs.registerHelper('join', (list: unknown, separator: unknown) => {
      if (!Array.isArray(list)) throw new Error('join needs a list');
      return list.join(typeof separator === 'string' ? separator : ',');
    });
    // One escaping helper per language a value lands in (src/util/escape.ts):
    // {{ini x}}, {{url x}}, {{sql x}}, {{shell "prefix" x}}, {{json x}}, {{mycnf x}}.
    const escaper = (escape: (value: string) => string) => (...args: unknown[]) => escape(args.slice(0, -1).map(String).join(''));
    this.hbs.registerHelper('ini', escaper(iniValue));
    this.hbs.registerHelper('url', escaper(urlComponent));
    this.hbs.registerHelper('sql', escaper(sqlString));
    this.hbs.registerHelper('shell', escaper(shellQuote));
    this.hbs.registerHelper('json', escaper(jsonString));
    this.hbs.registerHelper('mycnf', escaper(myCnfValue));
    // {{#if (eq a b)}}: two values are the same (nova's Ceph user is cinder's by default).
    this.hbs.registerHelper('eq', (a: unknown, b: unknown) => a === b);
    // A secret of fixed length (heat's auth_encryption_key: exactly 32) from a genpwd one (40): {{ini (truncate x 32)}}.
    this.hbs.registerHelper('truncate', (value: unknown, length: unknown) => {
      if (typeof value !== 'string' || typeof length !== 'number') throw new Error('truncate needs a string and a length');
      return value.slice(0, length);
    });
    this.hbs.registerHelper('if_enabled', function (this: TemplateContext, service: unknown, options: Handlebars.HelperOptions) {
      const key = `enable_${String(service).replace(/-/g, '_')}`;
      if (!(key in options.data.root)) throw new Error(`if_enabled: unknown service "${String(service)}"`);
      return options.data.root[key] === true ? options.fn(this) : options.inverse(this);
    });
  }

  renderFile(template: string, context: TemplateContext): string {
    const file = join(this.templatesDir, template);
    let compiled = this.compiled.get(file);
    if (!compiled) {
      let source: string;
      try {
        source = readFileSync(file, 'utf8');
      } catch {
        throw new TemplateError('template not found', { file });
      }
      compiled = this.compile(source, file);
      this.compiled.set(file, compiled);
    }
    return this.run(compiled, context, file);
  }

  /** Renders a template written inline in a role (a health check, a step's stdin). */
  renderString(source: string, context: TemplateContext, where: string): string {
    let compiled = this.compiled.get(`inline:${source}`);
    if (!compiled) {
      compiled = this.compile(source, where);
      this.compiled.set(`inline:${source}`, compiled);
    }
    return this.run(compiled, context, where);
  }

  private compile(source: string, file: string): HandlebarsTemplateDelegate {
    try {
      return this.hbs.compile(source, { noEscape: true, strict: true });
    } catch (error) {
      throw templateError(error, file);
    }
  }

  private run(template: HandlebarsTemplateDelegate, context: TemplateContext, file: string): string {
    try {
      return template(context);
    } catch (error) {
      throw templateError(error, file);
    }
  }
}

function templateError(error: unknown, file: string): TemplateError {
  const message = (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
  const line = /on line (\d+)/.exec(message)?.[1] ?? / - (\d+):\d+$/.exec(message)?.[1];
  const missing = /^"([^"]+)" not defined/.exec(message)?.[1];
  return new TemplateError(missing ? `variable "${missing}" is not defined` : message, {
    file,
    ...(line ? { line: Number(line) } : {}),
    ...(missing ? { key: missing } : {}),
  });
}
