// The device web app on AWS (docs/device-app.md): its routes (GET and HEAD, since an HTTP API's GET route does not
// match HEAD), a function without data access, and, in one synth with real bundling, a Lambda bundle that carries the
// built app (device-app/build.ts, injected as DEVICE_APP_BUNDLE) and serves it without building anything.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { LogLevel, type NodejsFunctionProps } from 'aws-cdk-lib/aws-lambda-nodejs';
import { PATHS } from '../../functions/routes.ts';
import { CibaStack } from '../../infra/ciba-stack.ts';
import {
  actionsOf,
  cdkJsonContext,
  FUNCTION_NAMES,
  functionInfo,
  logicalId,
  LOG_WRITE,
  resourcesOf,
  stubMissingHandlers,
  synth,
  tmpDirs,
  type Json,
  type Synth,
} from './support.ts';

const ROUTE_KEYS = ['GET', 'HEAD'].flatMap((m) => [`${m} ${PATHS.deviceApp}`, `${m} ${PATHS.deviceAppFile}`]);

let s: Synth;
before(() => {
  s = synth();
});
after(() => {
  for (const dir of tmpDirs) rmSync(dir, { recursive: true, force: true });
});

describe('device app: routes and function', () => {
  it('GET and HEAD /device and /device/app/{file}, all on the device-app function', () => {
    const routes = resourcesOf(s.json, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    const integrations = Object.fromEntries(resourcesOf(s.json, 'AWS::ApiGatewayV2::Integration'));
    const { id } = functionInfo(s, 'device-app');
    for (const key of ROUTE_KEYS) {
      const route = routes.find((r) => r.RouteKey === key);
      assert.ok(route, `route ${key}`);
      const integrationId: string = route.Target['Fn::Join'][1][1].Ref;
      assert.deepEqual(integrations[integrationId].Properties.IntegrationUri, { 'Fn::GetAtt': [id, 'Arn'] }, key);
    }
    // No route key ends in `/` (API Gateway refuses them; `/device/` reaches `GET /device`).
    assert.ok(routes.every((r) => !String(r.RouteKey).endsWith('/')));
  });

  it('API Gateway may invoke it for HEAD', () => {
    const arns = resourcesOf(s.json, 'AWS::Lambda::Permission').map(([, p]) => JSON.stringify(p.Properties.SourceArn));
    for (const p of [PATHS.deviceApp, PATHS.deviceAppFile]) {
      assert.ok(
        arns.some((arn) => arn.includes(`/*/*${p}"`) || arn.includes(`/*/HEAD${p}"`)),
        `permission for HEAD ${p}`,
      );
    }
  });

  it('serves static files only: no table, key, topic or workflow permission', () => {
    const { statements, props } = functionInfo(s, 'device-app');
    assert.deepEqual([...actionsOf(statements)].sort(), [...LOG_WRITE].sort());
    const env = props.Environment.Variables as Record<string, Json>;
    assert.equal(env.STATE_MACHINE_ARN, undefined);
    assert.equal(env.DEVICE_TOPIC_ARN, undefined);
  });
});

describe('device app: the deployed bundle', () => {
  // One synth with real bundling (every function is built with esbuild, as `cdk synth` does).
  let outdir: string;
  let bundle: string;
  before(() => {
    outdir = mkdtempSync(path.join(tmpdir(), 'ciba-device-app-cdkout-'));
    const stubs = mkdtempSync(path.join(tmpdir(), 'ciba-device-app-stubs-'));
    tmpDirs.push(outdir, stubs);
    const app = new App({ outdir, context: cdkJsonContext() });
    // esbuild's own summary of each bundle would only clutter the test output.
    const functionProps: Record<string, Partial<NodejsFunctionProps>> = stubMissingHandlers(stubs);
    for (const name of FUNCTION_NAMES)
      functionProps[name] = { ...functionProps[name], bundling: { logLevel: LogLevel.ERROR } };
    const stack = new CibaStack(app, 'DeviceAppBundleStack', { server: { functionProps } });
    const json = Template.fromStack(stack).toJSON() as Json;
    const id = logicalId(stack, stack.server.functions['device-app']!);
    const key: string = json.Resources[id].Properties.Code.S3Key;
    bundle = path.join(outdir, `asset.${key.replace(/\.zip$/, '')}`, 'index.js');
  });

  /** Invokes the bundled handler in a fresh node process, away from the project (so it cannot build the app). */
  async function invoke(rawPath: string, file?: string, headers: Record<string, string> = {}) {
    const script = `
      const { handler } = await import(${JSON.stringify(bundle)});
      const method = 'GET';
      const event = {
        version: '2.0', routeKey: 'GET /device', rawPath: ${JSON.stringify(rawPath)}, rawQueryString: '',
        headers: ${JSON.stringify(headers)}, ${file ? `pathParameters: { file: ${JSON.stringify(file)} },` : ''}
        requestContext: { http: { method, path: ${JSON.stringify(rawPath)}, protocol: 'HTTP/1.1', sourceIp: '192.0.2.1',
          userAgent: 'test' }, requestId: 'r', routeKey: 'GET /device', stage: '$default', timeEpoch: Date.now() },
        isBase64Encoded: false,
      };
      const context = { awsRequestId: 'test', functionName: 'device-app', getRemainingTimeInMillis: () => 10000 };
      process.stdout.write(JSON.stringify(await handler(event, context)));`;
    const { stdout } = await promisify(execFile)(process.execPath, ['--input-type=module', '-e', script], {
      cwd: tmpdir(),
      env: {
        PATH: process.env.PATH ?? '',
        ISSUER: 'https://auth.example.com',
        TABLE_NAME: 'ciba',
        KEYS_SOURCE: 'kms',
        KMS_RSA_KEY_ID: 'rsa',
        KMS_EC_KEY_ID: 'ec',
        KMS_SEAL_KEY_ID: 'seal',
        CIBA_METRICS: 'off',
        LOG_LEVEL: 'error',
      },
    });
    return JSON.parse(stdout) as {
      statusCode: number;
      headers: Record<string, string>;
      body?: string;
      isBase64Encoded?: boolean;
    };
  }

  it('carries the built app and serves the page and the service worker without building anything', async () => {
    const page = await invoke('/device/');
    assert.equal(page.statusCode, 200);
    assert.equal(page.headers['Content-Type'], 'text/html; charset=utf-8');
    assert.match(page.headers['Content-Security-Policy'] ?? '', /default-src 'self'/);
    assert.equal(page.headers['Strict-Transport-Security'], 'max-age=31536000', 'an https issuer');
    const html = Buffer.from(page.body ?? '', 'base64').toString('utf8');
    assert.match(html, /<meta name="ciba-issuer" content="https:\/\/auth\.example\.com" \/>/);
    const script = /<script defer src="app\/(main\.[0-9a-f]{10}\.js)"><\/script>/.exec(html)?.[1];
    assert.ok(script, 'the page names its hashed script');

    const main = await invoke(`/device/app/${script}`, script);
    assert.equal(main.statusCode, 200);
    assert.equal(main.headers['Cache-Control'], 'public, max-age=31536000, immutable');
    const sw = await invoke('/device/app/sw.js', 'sw.js', { 'accept-encoding': 'gzip' });
    assert.equal(sw.statusCode, 200);
    assert.equal(sw.headers['Content-Encoding'], 'gzip');
    assert.equal(sw.headers['Service-Worker-Allowed'], '../');
  });

  it('does not carry the build script or esbuild', () => {
    const code = readFileSync(bundle, 'utf8');
    assert.doesNotMatch(code, /esbuild/);
    assert.doesNotMatch(code, /buildSync/);
  });
});
