// The credential provider every Lambda bundle uses in place of the SDK's default chain
// (functions/runtime/lambda-credentials.ts, aliased in infra/bundling.ts): the environment Lambda sets, else a
// container credentials endpoint (a real HTTP server on loopback here), else a clear error.
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { defaultProvider } from '../../functions/runtime/lambda-credentials.ts';

const VARS = [
  'AWS_ACCESS_KEY_ID',
  'AWS_SECRET_ACCESS_KEY',
  'AWS_SESSION_TOKEN',
  'AWS_CONTAINER_CREDENTIALS_FULL_URI',
  'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI',
  'AWS_CONTAINER_AUTHORIZATION_TOKEN',
] as const;

describe('lambda-credentials', () => {
  let saved: Record<string, string | undefined>;
  beforeEach(() => {
    saved = Object.fromEntries(VARS.map((v) => [v, process.env[v]]));
    for (const v of VARS) delete process.env[v];
  });
  afterEach(() => {
    for (const v of VARS) {
      if (saved[v] === undefined) delete process.env[v];
      else process.env[v] = saved[v];
    }
  });

  it('reads the execution role credentials Lambda puts in the environment', async () => {
    process.env.AWS_ACCESS_KEY_ID = 'ASIAEXAMPLE';
    process.env.AWS_SECRET_ACCESS_KEY = 'secret';
    process.env.AWS_SESSION_TOKEN = 'session';
    const creds = await defaultProvider()();
    assert.equal(creds.accessKeyId, 'ASIAEXAMPLE');
    assert.equal(creds.secretAccessKey, 'secret');
    assert.equal(creds.sessionToken, 'session');
  });

  it('without them, reads a container credentials endpoint', async () => {
    let calls = 0;
    const server: Server = createServer((req, res) => {
      calls++;
      assert.equal(req.headers.authorization, 'token-1');
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify({
          AccessKeyId: 'ASIACONTAINER',
          SecretAccessKey: 'container-secret',
          Token: 'container-session',
          Expiration: new Date(Date.now() + 3_600_000).toISOString(),
        }),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      process.env.AWS_CONTAINER_CREDENTIALS_FULL_URI = `http://127.0.0.1:${(server.address() as AddressInfo).port}/creds`;
      process.env.AWS_CONTAINER_AUTHORIZATION_TOKEN = 'token-1';
      const creds = await defaultProvider()();
      assert.equal(creds.accessKeyId, 'ASIACONTAINER');
      assert.equal(creds.sessionToken, 'container-session');
      assert.equal(calls, 1);
    } finally {
      server.close();
    }
  });

  it('with neither, fails saying where it looked', async () => {
    await assert.rejects(defaultProvider()(), /no AWS credentials.*AWS_ACCESS_KEY_ID/);
  });
});
