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
  /** SQS SendMessage to the delivery dead-letter queue (a record of a final delivery failure; no secrets in it). */
  sendDeadLetter?: boolean;
  /**
   * Sealing key (functions/adapters/sealer.ts): 'seal' encrypts (secrets kept for delivery), 'open' decrypts (them, or a
   * client_secret_jwt secret), 'both' does both.
   */
  sealing?: 'seal' | 'open' | 'both';
  /** Signing key: 'sign' mints tokens, 'verify' reads the public keys (JWKS, userinfo). */
  keys?: 'sign' | 'verify';
  /**
   * SNS mobile push platform endpoints of device channels (functions/adapters/push-endpoints.ts): 'manage' creates
   * them in the configured platform applications and deletes them, 'delete' only deletes them.
   */
  pushEndpoints?: 'manage' | 'delete';
  /** VAPID key of Web Push (functions/adapters/vapid.ts): 'sign' signs VAPID tokens, 'public' only reads the public key. */
  vapid?: 'sign' | 'public';
  /**
   * Reaching users (docs/notifications.md): SNS Publish to the platform endpoints of `pushPlatforms` and, when SMS is
   * on, to phone numbers; SES SendEmail from the configured sender; the operator hook's secret. Each only when configured.
   */
  notifyUsers?: boolean;
};

export type HttpRoute = {
  /** Function name (also the module name under functions/handlers/). */
  name: string;
  /** HEAD routes answer as GET without a body (functions/runtime/http.ts); an HTTP API's GET route does not match HEAD. */
  method: 'GET' | 'HEAD' | 'POST' | 'PUT' | 'DELETE';
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
  topic: 'delivery' | 'device';
  access: Access;
  /** Seconds the function may run (an HTTP POST to the client plus its own AWS calls). */
  timeoutSeconds: number;
  /**
   * Lambda's own retries of a failed invocation (asynchronous invoke, 0-2). 0 where something else retries (the
   * workflow retries deliveries); the dispatcher relies on them for crashes, its ledger keeps them from sending twice.
   */
  retries: 0 | 1 | 2;
};

export const PATHS = {
  discovery: '/.well-known/openid-configuration',
  jwks: '/jwks',
  backchannel: '/bc-authorize',
  token: '/token',
  userinfo: '/userinfo',
  deviceRequests: '/device/requests',
  deviceRequest: '/device/requests/{id}',
  enrolmentCodes: '/device/enrolment-codes',
  enrol: '/device/enrol',
  devices: '/device/devices',
  device: '/device/devices/{id}',
  deviceChannel: '/device/channel',
  deviceConfig: '/device/config',
  revocation: '/revoke',
  introspection: '/introspect',
  registration: '/register',
  registrationClient: '/register/{client_id}',
  /** The device web app (docs/device-app.md): API Gateway routes `/device/` here too (a route cannot end in `/`). */
  deviceApp: '/device',
  deviceAppFile: '/device/app/{file}',
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
  // Token lifecycle (RFC 7009, RFC 7662/9701): client authentication may open a client_secret_jwt secret.
  {
    name: 'revoke',
    method: 'POST',
    path: PATHS.revocation,
    access: { table: 'readwrite', keys: 'verify', sealing: 'open' },
  },
  {
    name: 'introspect',
    method: 'POST',
    path: PATHS.introspection,
    access: { table: 'readwrite', keys: 'sign', sealing: 'open' },
  },
  // Dynamic registration (RFC 7591) and client management (RFC 7592); sealing: client_secret_jwt secrets.
  { name: 'register', method: 'POST', path: PATHS.registration, access: { table: 'readwrite', sealing: 'seal' } },
  ...(['GET', 'PUT', 'DELETE'] as const).map((method) => ({
    name: 'client-configuration',
    method,
    path: PATHS.registrationClient,
    access: { table: 'readwrite', sealing: 'seal' } as Access,
  })),
  // DPoP (RFC 9449): each proof's jti goes into the replay cache (and the DPoP nonce key may be created here).
  { name: 'userinfo', method: 'GET', path: PATHS.userinfo, access: { table: 'readwrite', keys: 'verify' } },
  { name: 'userinfo', method: 'POST', path: PATHS.userinfo, access: { table: 'readwrite', keys: 'verify' } },
  { name: 'device-list', method: 'GET', path: PATHS.deviceRequests, access: { table: 'readwrite' } },
  {
    name: 'device-decide',
    method: 'POST',
    path: PATHS.deviceRequest,
    access: { table: 'readwrite', sendTaskResult: true },
  },
  // The device API's own reads write too: every device assertion's jti goes into the replay cache.
  { name: 'device-request', method: 'GET', path: PATHS.deviceRequest, access: { table: 'readwrite' } },
  { name: 'device-enrolment-code', method: 'POST', path: PATHS.enrolmentCodes, access: { table: 'readwrite' } },
  {
    name: 'device-enrol',
    method: 'POST',
    path: PATHS.enrol,
    access: { table: 'readwrite', publishDevice: true, pushEndpoints: 'manage' },
  },
  { name: 'device-devices', method: 'GET', path: PATHS.devices, access: { table: 'readwrite' } },
  {
    name: 'device-remove',
    method: 'DELETE',
    path: PATHS.device,
    access: { table: 'readwrite', pushEndpoints: 'delete' },
  },
  {
    name: 'device-channel',
    method: 'PUT',
    path: PATHS.deviceChannel,
    access: { table: 'readwrite', pushEndpoints: 'manage' },
  },
  // What a device app needs before it subscribes: the VAPID public key (Web Push applicationServerKey).
  { name: 'device-config', method: 'GET', path: PATHS.deviceConfig, access: { vapid: 'public' } },
  // The reference authentication device, a web app on the device API's origin (no data access: static files).
  ...(['GET', 'HEAD'] as const).flatMap((method) => [
    { name: 'device-app', method, path: PATHS.deviceApp, access: {} },
    { name: 'device-app', method, path: PATHS.deviceAppFile, access: {} },
  ]),
];

/** Functions the workflows invoke (statemachines/*.asl.json `${<Name>FunctionArn}` placeholders). */
export const WORKFLOW_FUNCTIONS: readonly WorkflowFunction[] = [
  { name: 'notify-device', access: { table: 'readwrite', publishDevice: true, sendTaskResult: true } },
  { name: 'enqueue-delivery', access: { table: 'readwrite', publishDelivery: true } },
];

/**
 * SNS subscribers: `deliver` POSTs ping and push notifications to the client (CIBA §10.2, §10.3) and reports back;
 * `dispatch-notifications` turns each device-topic message into Web Push, SNS mobile push, SMS, e-mail and operator
 * hook sends.
 */
export const TOPIC_SUBSCRIBERS: readonly TopicSubscriber[] = [
  {
    name: 'deliver',
    topic: 'delivery',
    access: { table: 'readwrite', sendTaskResult: true, keys: 'sign', sealing: 'both', sendDeadLetter: true },
    timeoutSeconds: 30,
    retries: 0,
  },
  {
    // Reaches the user on every channel (docs/notifications.md); in-function retries stay within its timeout.
    name: 'dispatch-notifications',
    topic: 'device',
    access: { table: 'readwrite', vapid: 'sign', notifyUsers: true },
    timeoutSeconds: 60,
    retries: 2,
  },
];
