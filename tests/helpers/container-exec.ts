import { PassThrough } from 'node:stream';
import Docker from 'dockerode';

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

const docker = new Docker();

/** Runs argv in a container of this machine's engine (docker exec), its output split into stdout and stderr. */
export async function execInContainer(container: string, argv: string[]): Promise<ExecResult> {
  const run = await docker.getContainer(container).exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
  const stream = await run.start({ hijack: true, stdin: false });
  const stdout: Buffer[] = [];
  const stderr: Buffer[] = [];
  const out = new PassThrough().on('data', (chunk: Buffer) => stdout.push(chunk));
  const err = new PassThrough().on('data', (chunk: Buffer) => stderr.push(chunk));
  docker.modem.demuxStream(stream, out, err);
  await new Promise<void>((resolve, reject) => stream.on('end', resolve).on('close', resolve).on('error', reject));
  const { ExitCode } = await run.inspect();
  return { code: ExitCode ?? -1, stdout: Buffer.concat(stdout).toString(), stderr: Buffer.concat(stderr).toString() };
}

/** The text of an engine log buffer: frames of an 8-byte header (stream, size) and a payload. */
export function demux(buffer: Buffer): string {
  const parts: Buffer[] = [];
  for (let offset = 0; offset + 8 <= buffer.length; ) {
    const size = buffer.readUInt32BE(offset + 4);
    parts.push(buffer.subarray(offset + 8, offset + 8 + size));
    offset += 8 + size;
  }
  return Buffer.concat(parts).toString().trim();
}
