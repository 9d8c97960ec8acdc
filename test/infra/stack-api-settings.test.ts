// Infrastructure tests: the HTTP API, the construct props and the server settings of the synthesized CibaStack.
import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { ROUTES } from '../../functions/routes.ts';
import type { CibaServerProps } from '../../infra/ciba-construct.ts';
import { FUNCTION_NAMES, type Synth, synth, resourcesOf, logicalId, functionInfo, defaultStack } from './support.ts';

// ---- Tests ------------------------------------------------------------------------------------------------

let s: Synth;
before(() => {
  s = defaultStack();
});

describe('CibaStack: HTTP API', () => {
  it('routes match the route table exactly, each to its function, payload format 2.0', () => {
    const routes = resourcesOf(s.json, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    assert.deepEqual(routes.map((r) => r.RouteKey).sort(), ROUTES.map((r) => `${r.method} ${r.path}`).sort());
    for (const route of ROUTES) {
      const r = routes.find((x) => x.RouteKey === `${route.method} ${route.path}`);
      const integrationId: string = r.Target['Fn::Join'][1][1].Ref;
      const integration = s.json.Resources[integrationId].Properties;
      assert.equal(integration.IntegrationType, 'AWS_PROXY');
      assert.equal(integration.PayloadFormatVersion, '2.0');
      assert.deepEqual(
        integration.IntegrationUri,
        { 'Fn::GetAtt': [functionInfo(s, route.name).id, 'Arn'] },
        route.name,
      );
    }
  });

  it("HEAD routes for discovery and JWKS (a GET route does not match HEAD), on the GET route's integration", () => {
    const routes = resourcesOf(s.json, 'AWS::ApiGatewayV2::Route').map(([, r]) => r.Properties);
    const target = (key: string) => routes.find((r) => r.RouteKey === key)?.Target;
    for (const path of ['/.well-known/openid-configuration', '/jwks']) {
      assert.ok(target(`HEAD ${path}`), `HEAD ${path} route exists`);
      assert.deepEqual(target(`HEAD ${path}`), target(`GET ${path}`), `HEAD ${path} runs the GET function`);
    }
    // API Gateway may invoke the function for HEAD: a permission for the path with any method, or for HEAD itself.
    const permissions = resourcesOf(s.json, 'AWS::Lambda::Permission').map(([, p]) =>
      JSON.stringify(p.Properties.SourceArn),
    );
    for (const path of ['/.well-known/openid-configuration', '/jwks']) {
      const allows = (arn: string) => arn.includes(`/*/*${path}"`) || arn.includes(`/*/HEAD${path}"`);
      assert.ok(permissions.some(allows), `permission for HEAD ${path}`);
    }
  });

  it('default stage: auto-deploy, throttled, JSON access logs without query strings or headers', () => {
    const stages = resourcesOf(s.json, 'AWS::ApiGatewayV2::Stage').map(([, st]) => st.Properties);
    assert.equal(stages.length, 1);
    const stage = stages[0];
    assert.equal(stage.StageName, '$default');
    assert.equal(stage.AutoDeploy, true);
    assert.ok(stage.DefaultRouteSettings.ThrottlingRateLimit > 0);
    assert.ok(stage.DefaultRouteSettings.ThrottlingBurstLimit > 0);
    const format: string = stage.AccessLogSettings.Format;
    const fields = JSON.parse(format) as Record<string, string>;
    assert.equal(fields.requestId, '$context.requestId');
    assert.doesNotMatch(format, /querystring|authorization|header|\$context\.path|\$request\./i);
    const lgId: string = stage.AccessLogSettings.DestinationArn['Fn::GetAtt'][0];
    assert.equal(s.json.Resources[lgId].Properties.RetentionInDays, 30);
  });

  it('outputs the issuer, discovery URL, state machines, table, topics and dead-letter queue', () => {
    for (const name of [
      'IssuerUrl',
      'DiscoveryUrl',
      'PollStateMachineArn',
      'NotifyStateMachineArn',
      'TableName',
      'DeviceTopicArn',
      'DeliveryTopicArn',
      'DeliveryDeadLetterQueueUrl',
      'OperatorPolicyArn',
      'ServerSettings',
    ])
      s.template.hasOutput(name, {});
    // No settings given: the functions run with the defaults, and the admin CLI applies none (scripts/admin.ts).
    assert.equal(s.json.Outputs.ServerSettings.Value, '{}');
    assert.deepEqual(s.json.Outputs.DeliveryTopicArn.Value, { Ref: logicalId(s.stack, s.stack.server.deliveryTopic) });
    assert.deepEqual(s.json.Outputs.DeliveryDeadLetterQueueUrl.Value, {
      Ref: logicalId(s.stack, s.stack.server.deliveryDeadLetterQueue),
    });
    // The sealing key, for `npm run seed -- --seal-key-id` (client_secret_jwt secrets sealed as the functions do).
    assert.deepEqual(s.json.Outputs.SealingKeyId.Value, {
      'Fn::GetAtt': [logicalId(s.stack, s.stack.server.sealingKey), 'Arn'],
    });
    // Plus AlarmTopicArn and DashboardUrl (monitoring).
    assert.equal(Object.keys(s.json.Outputs).length, 13);
    assert.deepEqual(s.json.Outputs.DiscoveryUrl.Value, {
      'Fn::Join': [
        '',
        [
          { 'Fn::GetAtt': [logicalId(s.stack, s.stack.server.api), 'ApiEndpoint'] },
          '/.well-known/openid-configuration',
        ],
      ],
    });
  });
});

describe('CibaServer props', () => {
  it('issuer, tunables, architecture, removal policy, retention and per-function overrides', async () => {
    const { RetentionDays } = await import('aws-cdk-lib/aws-logs');
    const { Architecture } = await import('aws-cdk-lib/aws-lambda');
    const custom = synth(
      {
        issuer: 'https://login.example.com/',
        settings: {
          maxExpiresIn: Duration.seconds(900),
          defaultExpiresIn: Duration.minutes(2),
          pollInterval: Duration.seconds(3),
          deliveryWindow: Duration.minutes(30),
          deliveryTimeout: Duration.seconds(5),
          acrValues: ['urn:example:loa:2', 'urn:example:loa:3'],
          accessTokenTtl: Duration.minutes(5),
          bindingMessagePattern: '[A-Z0-9-]+',
        },
        architecture: Architecture.X86_64,
        removalPolicy: RemovalPolicy.DESTROY,
        logRetention: RetentionDays.ONE_WEEK,
        functionProps: { token: { memorySize: 1024, environment: { LOG_LEVEL: 'debug' } } },
      },
      'Custom',
    );
    const env = functionInfo(custom, 'token').props.Environment.Variables;
    assert.equal(env.ISSUER, 'https://login.example.com');
    assert.equal(env.CIBA_MAX_EXPIRES_IN, '900');
    assert.equal(env.CIBA_DEFAULT_EXPIRES_IN, '120');
    assert.equal(env.CIBA_POLL_INTERVAL, '3');
    assert.equal(env.CIBA_ACR_VALUES, 'urn:example:loa:2 urn:example:loa:3');
    assert.equal(env.CIBA_BINDING_MESSAGE_PATTERN, '[A-Z0-9-]+');
    assert.equal(functionInfo(custom, 'deliver').props.Environment.Variables.CIBA_DELIVERY_WINDOW, '1800');
    assert.equal(functionInfo(custom, 'deliver').props.Environment.Variables.CIBA_DELIVERY_TIMEOUT, '5');
    assert.equal(env.ACCESS_TOKEN_TTL, '300');
    assert.equal(env.LOG_LEVEL, 'debug');
    assert.equal(env.KEYS_SOURCE, 'kms');
    assert.equal(functionInfo(custom, 'token').props.MemorySize, 1024);
    assert.equal(functionInfo(custom, 'jwks').props.MemorySize, 512);
    assert.deepEqual(functionInfo(custom, 'jwks').props.Architectures, ['x86_64']);
    assert.equal(custom.json.Outputs.IssuerUrl.Value, 'https://login.example.com');
    assert.equal(custom.json.Outputs.DiscoveryUrl.Value, 'https://login.example.com/.well-known/openid-configuration');
    assert.equal(resourcesOf(custom.json, 'AWS::DynamoDB::Table')[0]![1].DeletionPolicy, 'Delete');
    for (const [, k] of resourcesOf(custom.json, 'AWS::KMS::Key')) assert.equal(k.DeletionPolicy, 'Delete');
    for (const [, q] of resourcesOf(custom.json, 'AWS::SQS::Queue')) assert.equal(q.DeletionPolicy, 'Delete');
    for (const [, lg] of resourcesOf(custom.json, 'AWS::Logs::LogGroup'))
      assert.equal(lg.Properties.RetentionInDays, 7);
    assert.deepEqual(
      resourcesOf(custom.json, 'AWS::StepFunctions::StateMachine')
        .map(([, sm]) => sm.Properties.StateMachineName)
        .sort(),
      ['Custom-CibaServer-notify', 'Custom-CibaServer-poll'],
    );
  });

  it('rejects delivery settings outside their bounds, and a POST timeout that does not fit in the deliver function', () => {
    const cases: [CibaServerProps, RegExp][] = [
      [
        { settings: { deliveryWindow: Duration.hours(25) } },
        /settings\.deliveryWindow must be whole seconds from 1 to 86400/,
      ],
      [{ settings: { deliveryWindow: Duration.millis(1500) } }, /settings\.deliveryWindow must be whole seconds/],
      [
        { settings: { deliveryTimeout: Duration.seconds(26) } },
        /settings\.deliveryTimeout must be whole seconds from 1 to 25/,
      ],
      [{ settings: { deliveryTimeout: Duration.millis(500) } }, /settings\.deliveryTimeout must be whole seconds/],
      [
        {
          settings: { deliveryTimeout: Duration.seconds(15) },
          functionProps: { deliver: { timeout: Duration.seconds(15) } },
        },
        /shorter than the deliver function's timeout \(15 s\)/,
      ],
    ];
    for (const [props, error] of cases) assert.throws(() => synth(props, 'BadDelivery'), error);
  });

  it('rejects overrides for functions that do not exist', () => {
    assert.throws(() => synth({ functionProps: { tokn: { memorySize: 1024 } } }, 'Typo'), /unknown functions: tokn/);
  });

  it('keeps long state machine names within 80 characters', () => {
    const long = synth({}, `S${'x'.repeat(100)}`);
    const names: string[] = resourcesOf(long.json, 'AWS::StepFunctions::StateMachine').map(
      ([, sm]) => sm.Properties.StateMachineName,
    );
    assert.equal(new Set(names).size, 2);
    for (const name of names) assert.ok(name.length <= 80 && /^[A-Za-z0-9_-]+$/.test(name), name);
  });
});

describe('CibaServer: server settings (rate limits, id_token_hint grace)', () => {
  const SETTINGS = [
    'CIBA_RATE_LIMIT_CLIENT',
    'CIBA_RATE_LIMIT_USER',
    'CIBA_USER_CODE_ATTEMPTS',
    'CIBA_ID_TOKEN_HINT_GRACE',
  ];

  it('are not set by default, so the functions apply their own defaults', () => {
    for (const name of FUNCTION_NAMES) {
      const env = functionInfo(s, name).props.Environment.Variables;
      for (const key of SETTINGS) assert.ok(!(key in env), `${name}: ${key}`);
    }
  });

  it('become the env strings functions/config.ts parses, on every function', () => {
    const custom = synth(
      {
        settings: {
          rateLimitPerClient: { count: 100, window: Duration.minutes(1) },
          rateLimitPerUser: { count: 3, window: Duration.hours(1) },
          userCodeAttempts: { count: 5, window: Duration.minutes(15) },
          idTokenHintGrace: Duration.hours(2),
        },
      },
      'Settings',
    );
    for (const name of FUNCTION_NAMES) {
      const env = functionInfo(custom, name).props.Environment.Variables;
      assert.equal(env.CIBA_RATE_LIMIT_CLIENT, '100/60', name);
      assert.equal(env.CIBA_RATE_LIMIT_USER, '3/3600', name);
      assert.equal(env.CIBA_USER_CODE_ATTEMPTS, '5/900', name);
      assert.equal(env.CIBA_ID_TOKEN_HINT_GRACE, '7200', name);
    }
    // No grace at all is a valid setting (not "unset").
    const none = synth({ settings: { idTokenHintGrace: Duration.seconds(0) } }, 'NoGrace');
    assert.equal(functionInfo(none, 'bc-authorize').props.Environment.Variables.CIBA_ID_TOKEN_HINT_GRACE, '0');
  });

  it('are rejected outside their bounds', () => {
    const cases: [CibaServerProps, RegExp][] = [
      [
        { settings: { rateLimitPerClient: { count: 0, window: Duration.minutes(1) } } },
        /settings\.rateLimitPerClient must be `<count>\/<seconds>`, each 1 to 9999999, got 0 per 1 minute/,
      ],
      [
        { settings: { rateLimitPerClient: { count: 1.5, window: Duration.minutes(1) } } },
        /settings\.rateLimitPerClient must be/,
      ],
      [
        { settings: { rateLimitPerUser: { count: 10_000_000, window: Duration.minutes(1) } } },
        /settings\.rateLimitPerUser must be/,
      ],
      [
        { settings: { rateLimitPerUser: { count: 10, window: Duration.millis(1500) } } },
        /settings\.rateLimitPerUser must be/,
      ],
      [
        { settings: { userCodeAttempts: { count: 5, window: Duration.seconds(0) } } },
        /settings\.userCodeAttempts must be/,
      ],
      [
        { settings: { userCodeAttempts: { count: 5, window: Duration.days(200) } } },
        /settings\.userCodeAttempts must be/,
      ],
      [
        { settings: { idTokenHintGrace: Duration.days(366) } },
        /settings\.idTokenHintGrace must be whole seconds from 0 to 31536000/,
      ],
      [{ settings: { idTokenHintGrace: Duration.millis(500) } }, /settings\.idTokenHintGrace must be whole seconds/],
      [{ settings: { maxPendingPerUser: 51 } }, /settings\.maxPendingPerUser must be an integer from 0 to 50, got 51/],
      [{ settings: { logLevel: 'verbose' as 'info' } }, /settings\.logLevel must be `debug` or `info`/],
      [{ settings: { bindingMessagePattern: '[' } }, /settings\.bindingMessagePattern must be a regular expression/],
      [{ settings: { tableName: 'x' } as never }, /settings\.tableName is not a server setting/],
    ];
    for (const [props, error] of cases) assert.throws(() => synth(props, 'BadSettings'), error);
  });
});
