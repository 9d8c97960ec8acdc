// functions/runtime/handler.ts and log.ts: every log line of an invocation carries the function and the Lambda
// request id, and nothing of another invocation running at the same time.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Context } from 'aws-lambda';
import { lambdaHandler } from '../../functions/runtime/handler.ts';
import { httpHandler, json, type HttpEvent } from '../../functions/runtime/http.ts';
import { log } from '../../functions/runtime/log.ts';

test('log lines carry the invocation context; concurrent invocations keep their own', async (t) => {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  t.mock.method(process.stdout, 'write', (chunk: string | Uint8Array, ...rest: []) => {
    if (typeof chunk === 'string' && chunk.startsWith('{"level"')) return lines.push(chunk) > 0;
    return write(chunk, ...rest);
  });
  const handler = lambdaHandler<{ n: number }, number>('probe', async ({ n }) => {
    await new Promise((r) => setTimeout(r, 10 - n));
    log.info('probe ran', { n });
    return n;
  });
  const ctx = (id: string) => ({ awsRequestId: id }) as Context;
  assert.deepEqual(await Promise.all([handler({ n: 1 }, ctx('req-1')), handler({ n: 2 }, ctx('req-2'))]), [1, 2]);
  t.mock.restoreAll();
  const parsed = lines.map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.message === 'probe ran');
  assert.equal(parsed.length, 2);
  for (const l of parsed) {
    assert.equal(l.function, 'probe');
    assert.equal(l.awsRequestId, `req-${l.n}`);
  }
});

test('HTTP handlers carry the same context (function = the route name)', async (t) => {
  const lines: string[] = [];
  const write = process.stdout.write.bind(process.stdout);
  t.mock.method(process.stdout, 'write', (chunk: string | Uint8Array, ...rest: []) => {
    if (typeof chunk === 'string' && chunk.startsWith('{"level"')) return lines.push(chunk) > 0;
    return write(chunk, ...rest);
  });
  const handler = httpHandler('probe-route', async () => {
    log.info('http probe ran');
    return json(200, {});
  });
  const event = { headers: {}, requestContext: { http: { method: 'GET' } } } as unknown as HttpEvent;
  const response = await handler(event, { awsRequestId: 'req-http' } as Context);
  t.mock.restoreAll();
  assert.equal((response as { statusCode: number }).statusCode, 200);
  const line = lines.map((l) => JSON.parse(l) as Record<string, unknown>).find((l) => l.message === 'http probe ran');
  assert.equal(line?.function, 'probe-route');
  assert.equal(line?.awsRequestId, 'req-http');
});
