// dynalite as the local stack runs it (local/dynalite.ts): parsed expressions kept as templates, LevelDB reads done
// synchronously, the writes of one turn coalesced into one batch, item operations served in-process without its HTTP
// handler, every query's iterator closed. What a request gets must not change: the same items, the same conditions,
// the same errors, and every acknowledged write durable, even across a kill.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  ConditionalCheckFailedException,
  DynamoDBClient,
  GetItemCommand,
  PutItemCommand,
  QueryCommand,
  UpdateItemCommand,
} from '@aws-sdk/client-dynamodb';
import type { AttributeValue, UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { ensureTable, LOCAL_CREDENTIALS, LOCAL_REGION, startLocalDynamoDb } from '../../local/dynamodb.ts';
import { createDynalite, dynaliteInProcess, openIterators } from '../../local/dynalite.ts';
import { listen } from '../../local/http-server.ts';
import { dynaliteService, LOCAL_AUTHORIZATION } from '../../local/inprocess.ts';
import type { LocalDynamoDb } from '../../local/dynamodb.ts';
import { useInProcess } from '../../local/inprocess.ts';
import { TABLE as SCHEMA } from '../../infra/table.ts';

const TABLE = 'local-dynalite-test';
let dir: string;
let dynamo: LocalDynamoDb;
let client: DynamoDBClient;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-dynalite-'));
  dynamo = await startLocalDynamoDb({ tableName: TABLE, dataDir: join(dir, 'data') });
  client = new DynamoDBClient({ region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
  useInProcess(client, () => dynamo.service);
});
after(async () => {
  client.destroy();
  await dynamo.close();
  await rm(dir, { recursive: true, force: true });
});

const key = (id: string): Record<string, AttributeValue> => ({ pk: { S: `T#${id}` }, sk: { S: 'X' } });
const update = (id: string, input: Omit<UpdateItemCommandInput, 'TableName' | 'Key'>) =>
  client.send(new UpdateItemCommand({ TableName: TABLE, Key: key(id), ReturnValues: 'ALL_NEW', ...input }));
/** The answer as the handlers would see it: the attributes, or the error's name and message. */
const outcome = async (p: Promise<{ Attributes?: Record<string, AttributeValue> }>) => {
  try {
    const { Attributes } = await p;
    const { pk: _pk, ...rest } = Attributes ?? {};
    return { ok: rest };
  } catch (err) {
    return { error: `${(err as Error).name}: ${(err as Error).message}` };
  }
};

describe('expression templates', { timeout: 30_000 }, () => {
  test('a kept parse gives each request its own values, in every place the expression uses them', async () => {
    await update('values', {
      UpdateExpression: 'SET #m = :m',
      ExpressionAttributeNames: { '#m': 'm' },
      ExpressionAttributeValues: { ':m': { M: {} } },
    });
    for (let round = 0; round < 3; round++) {
      const out = await update('values', {
        UpdateExpression: 'SET #n = :v, #m.#k = :w, #l = list_append(if_not_exists(#l, :empty), :one) ADD #c :inc',
        ConditionExpression: 'attribute_exists(#m) AND (attribute_not_exists(#n) OR #n <> :v)',
        ExpressionAttributeNames: { '#n': 'n', '#m': 'm', '#k': 'k', '#l': 'l', '#c': 'c' },
        ExpressionAttributeValues: {
          ':v': { N: String(10 + round) },
          ':w': { S: `w${round}` },
          ':empty': { L: [] },
          ':one': { L: [{ N: String(round) }] },
          ':inc': { N: String(round + 1) },
        },
      });
      assert.deepEqual(out.Attributes, {
        ...key('values'),
        m: { M: { k: { S: `w${round}` } } },
        n: { N: String(10 + round) },
        l: { L: Array.from({ length: round + 1 }, (_, i) => ({ N: String(i) })) },
        c: { N: String(((round + 1) * (round + 2)) / 2) },
      });
    }
  });

  test('names and values an expression leaves unused are refused, from a kept parse as from a fresh one', async () => {
    const input = {
      UpdateExpression: 'SET #u = :v',
      ExpressionAttributeNames: { '#u': 'u' },
      ExpressionAttributeValues: { ':v': { S: 'v' } },
    };
    for (let i = 0; i < 2; i++) {
      assert.deepEqual(await outcome(update('unused', input)), { ok: { sk: { S: 'X' }, u: { S: 'v' } } });
      assert.deepEqual(
        await outcome(
          update('unused', {
            ...input,
            ExpressionAttributeValues: { ...input.ExpressionAttributeValues, ':x': { S: 'x' } },
          }),
        ),
        { error: 'ValidationException: Value provided in ExpressionAttributeValues unused in expressions: keys: {:x}' },
      );
      assert.deepEqual(
        await outcome(update('unused', { ...input, ExpressionAttributeNames: { '#u': 'u', '#z': 'z' } })),
        { error: 'ValidationException: Value provided in ExpressionAttributeNames unused in expressions: keys: {#z}' },
      );
    }
  });

  test('what each expression uses is its own, whichever expressions a request combines it with', async () => {
    const names = { '#a': 'a', '#b': 'b' };
    const both = {
      UpdateExpression: 'SET #a = :v',
      ConditionExpression: 'attribute_not_exists(#a) OR #a <> :v',
      ExpressionAttributeNames: { '#a': 'a' },
      ExpressionAttributeValues: { ':v': { S: 'first' } },
    };
    assert.ok('ok' in (await outcome(update('combined', both))));
    // The same update alone uses #a and :v (the condition above used them as well).
    assert.ok(
      'ok' in
        (await outcome(
          update('combined', {
            UpdateExpression: 'SET #a = :v',
            ExpressionAttributeNames: { '#a': 'a' },
            ExpressionAttributeValues: { ':v': { S: 'second' } },
          }),
        )),
    );
    // The same condition with another update: the condition uses #a and :v, the update #b and :w.
    const out = await outcome(
      update('combined', {
        UpdateExpression: 'SET #b = :w',
        ConditionExpression: 'attribute_not_exists(#a) OR #a <> :v',
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: { ':v': { S: 'other' }, ':w': { S: 'w' } },
      }),
    );
    assert.deepEqual(out, { ok: { sk: { S: 'X' }, a: { S: 'second' }, b: { S: 'w' } } });
  });

  test('a kept parse is per value type; BETWEEN and attribute_type are checked against each request', async () => {
    const plus = (one: AttributeValue) =>
      outcome(
        update('types', {
          UpdateExpression: 'SET #n = if_not_exists(#n, :zero) + :one',
          ExpressionAttributeNames: { '#n': 'n' },
          ExpressionAttributeValues: { ':zero': { N: '0' }, ':one': one },
        }),
      );
    assert.deepEqual(await plus({ N: '1' }), { ok: { sk: { S: 'X' }, n: { N: '1' } } });
    assert.deepEqual(await plus({ S: '1' }), {
      error:
        'ValidationException: Invalid UpdateExpression: Incorrect operand type for operator or function; ' +
        'operator or function: +, operand type: S',
    });
    assert.deepEqual(await plus({ N: '2' }), { ok: { sk: { S: 'X' }, n: { N: '3' } } });

    const between = (lo: string, hi: string) =>
      outcome(
        update('types', {
          UpdateExpression: 'SET #x = :lo',
          ConditionExpression: '#n BETWEEN :lo AND :hi',
          ExpressionAttributeNames: { '#n': 'n', '#x': 'x' },
          ExpressionAttributeValues: { ':lo': { N: lo }, ':hi': { N: hi } },
        }),
      );
    assert.ok('ok' in (await between('0', '10')));
    assert.deepEqual(await between('10', '0'), {
      error:
        'ValidationException: Invalid ConditionExpression: The BETWEEN operator requires upper bound to be greater ' +
        'than or equal to lower bound; lower bound operand: AttributeValue: {N:10}, upper bound operand: ' +
        'AttributeValue: {N:0}',
    });

    const typed = (name: string) =>
      outcome(
        update('types', {
          UpdateExpression: 'SET #y = :t',
          ConditionExpression: 'attribute_type(#n, :t)',
          ExpressionAttributeNames: { '#n': 'n', '#y': 'y' },
          ExpressionAttributeValues: { ':t': { S: name } },
        }),
      );
    assert.ok('ok' in (await typed('N')));
    assert.match((await typed('Q')).error ?? '', /Invalid attribute type name found; type: Q/);
  });

  test('a failed parse answers the same error every time', async () => {
    const cases: [Omit<UpdateItemCommandInput, 'TableName' | 'Key'>, RegExp][] = [
      [{ UpdateExpression: 'SET #a = ', ExpressionAttributeNames: { '#a': 'a' } }, /Syntax error/],
      [
        { UpdateExpression: 'SET status = :v', ExpressionAttributeValues: { ':v': { S: 'v' } } },
        /reserved keyword: status/,
      ],
      [
        {
          UpdateExpression: 'SET #a = :v, #a = :w',
          ExpressionAttributeNames: { '#a': 'a' },
          ExpressionAttributeValues: { ':v': { S: 'v' }, ':w': { S: 'w' } },
        },
        /Two document paths overlap/,
      ],
      [{ UpdateExpression: 'SET #a = :v', ExpressionAttributeNames: { '#a': 'a' } }, /attribute value: :v/],
    ];
    for (const [input, error] of cases) {
      const first = await outcome(update('failed', input));
      assert.match(first.error ?? '', error);
      assert.deepEqual(await outcome(update('failed', input)), first);
    }
  });

  test('a query, a projection and a filter read with kept parses as with fresh ones', async () => {
    for (let i = 0; i < 4; i++) {
      await client.send(
        new PutItemCommand({ TableName: TABLE, Item: { pk: { S: 'Q#1' }, sk: { S: `S#${i}` }, v: { N: String(i) } } }),
      );
    }
    for (const min of ['1', '2', '3']) {
      const out = await client.send(
        new QueryCommand({
          TableName: TABLE,
          KeyConditionExpression: '#p = :p AND begins_with(#s, :s)',
          FilterExpression: '#v >= :min',
          ProjectionExpression: '#s, #v',
          ExpressionAttributeNames: { '#p': 'pk', '#s': 'sk', '#v': 'v' },
          ExpressionAttributeValues: { ':p': { S: 'Q#1' }, ':s': { S: 'S#' }, ':min': { N: min } },
        }),
      );
      assert.deepEqual(
        out.Items,
        [0, 1, 2, 3].filter((i) => i >= Number(min)).map((i) => ({ sk: { S: `S#${i}` }, v: { N: String(i) } })),
      );
    }
  });
});

describe('reads and writes', { timeout: 60_000 }, () => {
  test('conditional puts racing on one key: exactly one succeeds', async () => {
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        client.send(
          new PutItemCommand({
            TableName: TABLE,
            Item: { ...key('race'), writer: { N: String(i) } },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        ),
      ),
    );
    const won = results.flatMap((r, i) => (r.status === 'fulfilled' ? [i] : []));
    assert.equal(won.length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.ok(r.reason instanceof ConditionalCheckFailedException);
    }
    const { Item } = await client.send(
      new GetItemCommand({ TableName: TABLE, Key: key('race'), ConsistentRead: true }),
    );
    assert.equal(Item?.writer?.N, String(won[0]));
  });

  test('concurrent increments of one counter each see the one before', async () => {
    const outs = await Promise.all(
      Array.from({ length: 40 }, () =>
        client.send(
          new UpdateItemCommand({
            TableName: TABLE,
            Key: key('counter'),
            UpdateExpression: 'ADD #n :one',
            ExpressionAttributeNames: { '#n': 'n' },
            ExpressionAttributeValues: { ':one': { N: '1' } },
            ReturnValues: 'UPDATED_NEW',
          }),
        ),
      ),
    );
    const seen = outs.map((o) => Number(o.Attributes?.n?.N)).sort((a, b) => a - b);
    assert.deepEqual(
      seen,
      Array.from({ length: 40 }, (_, i) => i + 1),
    );
  });

  test('writes made together are each readable once acknowledged, by key and through the index', async () => {
    const { userIndex } = SCHEMA;
    await Promise.all(
      Array.from({ length: 30 }, (_, i) =>
        client.send(
          new PutItemCommand({
            TableName: TABLE,
            Item: {
              ...key(`together-${i}`),
              [userIndex.partitionKey]: { S: 'TOGETHER' },
              [userIndex.sortKey]: { S: String(i).padStart(3, '0') },
            },
          }),
        ),
      ),
    );
    for (let i = 0; i < 30; i++) {
      const { Item } = await client.send(
        new GetItemCommand({ TableName: TABLE, Key: key(`together-${i}`), ConsistentRead: true }),
      );
      assert.equal(Item?.[userIndex.sortKey]?.S, String(i).padStart(3, '0'));
    }
    const { Items } = await client.send(
      new QueryCommand({
        TableName: TABLE,
        IndexName: userIndex.name,
        KeyConditionExpression: '#g = :g',
        ExpressionAttributeNames: { '#g': userIndex.partitionKey },
        ExpressionAttributeValues: { ':g': { S: 'TOGETHER' } },
      }),
    );
    assert.equal(Items?.length, 30);
  });

  test('a write acknowledged before the process is killed is there after a restart', async () => {
    const data = join(dir, 'killed');
    const child = spawnSync(process.execPath, ['--input-type=module', '-e', KILLED_WRITER, data, TABLE], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    assert.equal(child.signal, 'SIGKILL', `the writer ended otherwise: ${child.stderr}`);
    const acknowledged = child.stdout.split('\n').filter(Boolean);
    assert.ok(acknowledged.length >= 200, `only ${acknowledged.length} writes acknowledged`);
    const reopened = await startLocalDynamoDb({ tableName: TABLE, dataDir: data });
    try {
      const reader = new DynamoDBClient({ region: LOCAL_REGION, credentials: LOCAL_CREDENTIALS, maxAttempts: 1 });
      useInProcess(reader, () => reopened.service);
      const missing: string[] = [];
      for (const id of acknowledged) {
        const { Item } = await reader.send(
          new GetItemCommand({ TableName: TABLE, Key: key(id), ConsistentRead: true }),
        );
        if (Item?.n?.S !== id) missing.push(id);
      }
      reader.destroy();
      assert.deepEqual(missing, []);
    } finally {
      await reopened.close();
    }
  });
});

// Writes in rounds of ten concurrent puts (so they share batches), printing each id once its put is acknowledged
// (a synchronous write to stdout, so it is out before the kill), and kills itself with SIGKILL at the 205th
// acknowledgement, while the other five puts of that round are still in flight.
const DYNAMODB_MODULE = new URL('../../local/dynamodb.ts', import.meta.url).href;
const KILLED_WRITER = `
import { writeSync } from 'node:fs';
const { startLocalDynamoDb } = await import(${JSON.stringify(DYNAMODB_MODULE)});
const [dataDir, tableName] = process.argv.slice(1);
const db = await startLocalDynamoDb({ tableName, dataDir });
const headers = {
  'content-type': 'application/x-amz-json-1.0',
  'x-amz-target': 'DynamoDB_20120810.PutItem',
  authorization:
    'AWS4-HMAC-SHA256 Credential=local/20000101/us-east-1/dynamodb/aws4_request, SignedHeaders=host, Signature=x',
  'x-amz-date': '20000101T000000Z',
};
let acknowledged = 0;
for (let round = 0; ; round++) {
  await Promise.all(Array.from({ length: 10 }, async (_, j) => {
    const id = 'kill-' + (round * 10 + j);
    const body = JSON.stringify({ TableName: tableName, Item: { pk: { S: 'T#' + id }, sk: { S: 'X' }, n: { S: id } } });
    const reply = await db.service({ method: 'POST', path: '/', headers, body });
    if (reply.status !== 200) throw new Error(reply.body);
    writeSync(1, id + '\\n');
    if (++acknowledged === 205) process.kill(process.pid, 'SIGKILL');
  }));
}
`;

describe('requests in-process', { timeout: 30_000 }, () => {
  test('item operations answer exactly as dynalite’s own request handler does, errors included', async () => {
    // Two empty dynalite stores with the table: one served by dynaliteInProcess, one by dynalite's handler.
    const start = async () => {
      const server = createDynalite({ createTableMs: 0, deleteTableMs: 0, updateTableMs: 0 });
      const listening = await listen(server, '127.0.0.1', 0, true);
      await ensureTable(listening.url, TABLE);
      return { server, close: listening.close };
    };
    const [a, b] = await Promise.all([start(), start()]);
    try {
      // Count what reaches dynalite's own handler on the in-process side.
      let handled = 0;
      const listener = a.server.listeners('request')[0] as (...args: unknown[]) => void;
      a.server.removeAllListeners('request');
      a.server.on('request', (...args: unknown[]) => {
        handled++;
        listener(...args);
      });
      const fast = dynaliteInProcess(a.server);
      const reference = dynaliteService(b.server);
      const headers = (target: string, contentType = 'application/x-amz-json-1.0') => ({
        'content-type': contentType,
        'x-amz-target': target,
        authorization: LOCAL_AUTHORIZATION,
        'x-amz-date': '20260101T000000Z',
      });
      const requests: { target: string; body: unknown; contentType?: string }[] = [
        {
          target: 'PutItem',
          body: { TableName: TABLE, Item: { ...key('1'), n: { N: '1' }, gsi1pk: { S: 'G' }, gsi1sk: { S: '1' } } },
        },
        {
          target: 'PutItem',
          body: { TableName: TABLE, Item: { ...key('2'), n: { N: '2' }, gsi1pk: { S: 'G' }, gsi1sk: { S: '2' } } },
        },
        {
          target: 'PutItem',
          body: { TableName: TABLE, Item: key('1'), ConditionExpression: 'attribute_not_exists(pk)' },
        },
        {
          target: 'PutItem',
          body: { TableName: TABLE, Item: { ...key('3'), s: { S: 'x' } }, ReturnValues: 'ALL_OLD' },
        },
        { target: 'GetItem', body: { TableName: TABLE, Key: key('1'), ConsistentRead: true } },
        { target: 'GetItem', body: { TableName: TABLE, Key: key('missing') } },
        { target: 'GetItem', body: { TableName: 'no-such-table', Key: key('1') } },
        { target: 'GetItem', body: { TableName: TABLE, Key: 'not a map' } },
        { target: 'GetItem', body: { TableName: TABLE, Key: { pk: { S: 'T#1' } } } },
        { target: 'GetItem', body: { TableName: TABLE, Key: key('1') }, contentType: 'application/json' },
        {
          target: 'UpdateItem',
          body: {
            TableName: TABLE,
            Key: key('1'),
            UpdateExpression: 'ADD n :one SET #t = :t',
            ConditionExpression: 'n < :max',
            ExpressionAttributeNames: { '#t': 't' },
            ExpressionAttributeValues: { ':one': { N: '1' }, ':t': { S: 'x' }, ':max': { N: '5' } },
            ReturnValues: 'ALL_NEW',
          },
        },
        {
          target: 'UpdateItem',
          body: {
            TableName: TABLE,
            Key: key('1'),
            UpdateExpression: 'SET n = :n',
            ConditionExpression: 'n > :n',
            ExpressionAttributeValues: { ':n': { N: '9' } },
          },
        },
        { target: 'UpdateItem', body: { TableName: TABLE, Key: key('1'), UpdateExpression: 'SET n = :unused' } },
        {
          target: 'Query',
          body: {
            TableName: TABLE,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :g',
            ExpressionAttributeValues: { ':g': { S: 'G' } },
          },
        },
        {
          target: 'Query',
          body: {
            TableName: TABLE,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :g',
            ExpressionAttributeValues: { ':g': { S: 'G' } },
            Limit: 1,
          },
        },
        {
          target: 'Query',
          body: {
            TableName: TABLE,
            KeyConditionExpression: 'pk = :p',
            ExpressionAttributeValues: { ':p': { S: 'T#2' } },
            ReturnConsumedCapacity: 'TOTAL',
          },
        },
        { target: 'Scan', body: { TableName: TABLE, Limit: 2 } },
        { target: 'BatchGetItem', body: { RequestItems: { [TABLE]: { Keys: [key('1'), key('2'), key('missing')] } } } },
        {
          target: 'BatchWriteItem',
          body: {
            RequestItems: { [TABLE]: [{ DeleteRequest: { Key: key('2') } }, { PutRequest: { Item: key('4') } }] },
          },
        },
        { target: 'DeleteItem', body: { TableName: TABLE, Key: key('3'), ReturnValues: 'ALL_OLD' } },
        {
          target: 'DeleteItem',
          body: { TableName: TABLE, Key: key('1'), ConditionExpression: 'attribute_not_exists(n)' },
        },
        { target: 'Scan', body: { TableName: TABLE } },
        { target: 'DescribeTable', body: { TableName: 'no-such-table' } }, // not an item operation: dynalite's handler
        { target: 'NoSuchOperation', body: {} },
      ];
      for (const r of requests) {
        const request = {
          method: 'POST',
          path: '/',
          headers: headers(`DynamoDB_20120810.${r.target}`, r.contentType),
          body: JSON.stringify(r.body),
        };
        const [got, expected] = await Promise.all([fast(request), reference(request)]);
        const label = `${r.target} ${JSON.stringify(r.body).slice(0, 80)}`;
        assert.match(got.headers['x-amzn-requestid'] ?? '', /^[A-Z0-9=]{52}$/, label);
        if (r.target === 'BatchGetItem') {
          // Its items come in the order its reads complete (DynamoDB promises no order either).
          const items = (reply: { body: string }) =>
            (JSON.parse(reply.body).Responses[TABLE] as { pk: { S: string } }[]).map((i) => JSON.stringify(i)).sort();
          assert.equal(got.status, expected.status, label);
          assert.deepEqual(items(got), items(expected), label);
          continue;
        }
        assert.deepEqual(
          { ...got, headers: { ...got.headers, 'x-amzn-requestid': 'id' } },
          { ...expected, headers: { ...expected.headers, 'x-amzn-requestid': 'id' } },
          label,
        );
      }
      assert.equal(handled, 2, 'only DescribeTable and the unknown operation reach dynalite’s handler');
      // What the in-process path leaves to dynalite's handler: not JSON, not an object, no body.
      for (const body of ['{', '"text"', '[]', '']) {
        const request = { method: 'POST', path: '/', headers: headers('DynamoDB_20120810.GetItem'), body };
        const [got, expected] = await Promise.all([fast(request), reference(request)]);
        assert.deepEqual(
          { ...got, headers: { ...got.headers, 'x-amzn-requestid': 'id' } },
          { ...expected, headers: { ...expected.headers, 'x-amzn-requestid': 'id' } },
          `body ${body}`,
        );
      }
      assert.equal(handled, 6);
      // Every query and scan closed its LevelDB iterator (dynalite's streams leave them open: local/dynalite.ts).
      await new Promise((resolve) => setImmediate(resolve));
      assert.equal(openIterators(a.server), 0);
      assert.equal(openIterators(b.server), 0);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });
});
