// One route table: drives the API Gateway routes in CDK (infra/ciba-construct.ts) and the local HTTP server
// (local/api.ts). Each entry is one Lambda function; `access` is what that function may touch (least privilege).

export type Access = {
  /** DynamoDB table access. */
  table?: 'read' | 'readwrite';
  /** Step Functions: start executions of the CIBA state machine. */
  startExecution?: boolean;
  /** Step Functions: SendTaskSuccess / SendTaskFailure. */
  sendTaskResult?: boolean;
  /** SNS device topic publish. */
  publishDevice?: boolean;
  /** SNS delivery topic publish (ping/push delivery requests; no secrets in them). */
  publishDelivery?: boolean;
  /**
   * Sealing key (functions/adapters/sealer.ts): 'seal' encrypts (secrets kept for delivery), 'open' decrypts (them, or a
   * client_secret_jwt secret), 'both' does both.
   */
  sealing?: 'seal' | 'open' | 'both';
  /** Signing key: 'sign' mints tokens, 'verify' reads the public keys (JWKS, userinfo). */
  keys?: 'sign' | 'verify';
};

export type HttpRoute = {
  /** Function name (also the module name under functions/handlers/). */
  name: string;
  /** HEAD routes answer as GET without a body (functions/runtime/http.ts); an HTTP API's GET route does not match HEAD. */
  method: 'GET' | 'HEAD' | 'POST';
  /** API path; `{id}` style path parameters as in API Gateway. */
  path: string;
  access: Access;
};

export type WorkflowFunction = {
  name: string;
  access: Access;
};

/** A function subscribed to one of the SNS topics (on AWS a Lambda subscription; locally the local SNS fan-out). */
export type TopicSubscriber = {
  name: string;
  topic: 'delivery';
  access: Access;
  /** Seconds the function may run (an HTTP POST to the client plus its own AWS calls). */
  timeoutSeconds: number;
};

export const PATHS = {
  discovery: '/.well-known/openid-configuration',
  jwks: '/jwks',
  backchannel: '/bc-authorize',
  token: '/token',
  userinfo: '/userinfo',
  deviceRequests: '/device/requests',
  deviceRequest: '/device/requests/{id}',
} as const;

export const ROUTES: readonly HttpRoute[] = [
  { name: 'discovery', method: 'GET', path: PATHS.discovery, access: {} },
  { name: 'discovery', method: 'HEAD', path: PATHS.discovery, access: {} },
  { name: 'jwks', method: 'GET', path: PATHS.jwks, access: { keys: 'verify' } },
  { name: 'jwks', method: 'HEAD', path: PATHS.jwks, access: { keys: 'verify' } },
  {
    name: 'bc-authorize',
    method: 'POST',
    path: PATHS.backchannel,
    access: { table: 'readwrite', startExecution: true, sealing: 'both', keys: 'verify' },
  },
  { name: 'token', method: 'POST', path: PATHS.token, access: { table: 'readwrite', keys: 'sign', sealing: 'open' } },
  { name: 'userinfo', method: 'GET', path: PATHS.userinfo, access: { table: 'read', keys: 'verify' } },
  { name: 'userinfo', method: 'POST', path: PATHS.userinfo, access: { table: 'read', keys: 'verify' } },
  { name: 'device-list', method: 'GET', path: PATHS.deviceRequests, access: { table: 'readwrite' } },
  {
    name: 'device-decide',
    method: 'POST',
    path: PATHS.deviceRequest,
    access: { table: 'readwrite', sendTaskResult: true },
  },
];

/** Functions the state machine invokes (statemachines/ciba.asl.json `${<Name>FunctionArn}` placeholders). */
export const WORKFLOW_FUNCTIONS: readonly WorkflowFunction[] = [
  { name: 'notify-device', access: { table: 'readwrite', publishDevice: true, sendTaskResult: true } },
  { name: 'enqueue-delivery', access: { table: 'readwrite', publishDelivery: true } },
];

/** SNS subscribers: `deliver` POSTs ping and push notifications to the client (CIBA §10.2, §10.3) and reports back. */
export const TOPIC_SUBSCRIBERS: readonly TopicSubscriber[] = [
  {
    name: 'deliver',
    topic: 'delivery',
    access: { table: 'readwrite', sendTaskResult: true, keys: 'sign', sealing: 'both' },
    timeoutSeconds: 30,
  },
];
