// `<data dir>/local-stack.json`: how other processes on this machine reach a running local stack (the admin CLI,
// scripts/admin.ts). Written by the stack once it serves requests, removed when it stops cleanly; a file left by a
// stack that was killed names a process that is gone, and readers treat it as absent. It holds no secret: endpoints,
// names and file paths only.
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export const STATE_FILE = 'local-stack.json';

export type LocalStackState = {
  pid: number;
  issuer: string;
  /** The API's URL and port (the issuer may differ when ISSUER is set). */
  url: string;
  port: number;
  region: string;
  tableName: string;
  /** DynamoDB (dynalite or DynamoDB Local) and the AWS endpoint serving Step Functions, SNS and SQS. */
  dynamodbEndpoint: string;
  awsEndpoint: string;
  keysFile: string;
  sealKeyFile: string;
  /**
   * The stack's configuration variables (functions/settings.ts: issuer, table, key files, limits, TTLs; no secret),
   * so a tool acting on its data (the admin CLI) applies the same settings.
   */
  env: Record<string, string>;
};

export function writeStateFile(dataDir: string, state: LocalStackState): string {
  const file = join(dataDir, STATE_FILE);
  writeFileSync(file, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  return file;
}

/** Removes the file if it is still this process's. */
export function removeStateFile(file: string): void {
  try {
    if ((JSON.parse(readFileSync(file, 'utf8')) as { pid?: unknown }).pid === process.pid) rmSync(file);
  } catch {
    // already gone
  }
}

/** The running stack of `dataDir`, or undefined when none runs there (no file, or its process is gone). */
export function readStateFile(dataDir: string): LocalStackState | undefined {
  let state: LocalStackState;
  try {
    state = JSON.parse(readFileSync(join(dataDir, STATE_FILE), 'utf8')) as LocalStackState;
  } catch {
    return undefined;
  }
  if (!Number.isInteger(state.pid) || state.pid <= 0) return undefined;
  try {
    process.kill(state.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return undefined;
  }
  return state;
}
