// One route table: drives the API Gateway routes in CDK (infra/ciba-construct.ts) and the local HTTP server
// (infra/local/api.ts). Each entry is one Lambda function; `access` is what that function may touch (least privilege).

export type Access = {
  /** DynamoDB table access. */
  table?: 'read' | 'readwrite';
  /** Step Functions: start executions of the CIBA state machine. */
  startExecution?: boolean;
  /** Step Functions: SendTaskSuccess / SendTaskFailure. */
  sendTaskResult?: boolean;
  /** SNS device topic publish. */
  publishDevice?: boolean;
  /** Signing key: 'sign' mints tokens, 'verify' reads the public keys (JWKS, userinfo). */
  keys?: 'sign' | 'verify';
};

export type HttpRoute = {
  /** Function name (also the module name under functions/handlers/). */
  name: string;
  method: 'GET' | 'POST';
  /** API path; `{id}` style path parameters as in API Gateway. */
  path: string;
  access: Access;
};

export type WorkflowFunction = {
  name: string;
  access: Access;
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
  { name: 'jwks', method: 'GET', path: PATHS.jwks, access: { keys: 'verify' } },
  { name: 'bc-authorize', method: 'POST', path: PATHS.backchannel, access: { table: 'readwrite', startExecution: true } },
  { name: 'token', method: 'POST', path: PATHS.token, access: { table: 'readwrite', keys: 'sign' } },
  { name: 'userinfo', method: 'GET', path: PATHS.userinfo, access: { table: 'read', keys: 'verify' } },
  { name: 'userinfo', method: 'POST', path: PATHS.userinfo, access: { table: 'read', keys: 'verify' } },
  { name: 'device-list', method: 'GET', path: PATHS.deviceRequests, access: { table: 'readwrite' } },
  { name: 'device-decide', method: 'POST', path: PATHS.deviceRequest, access: { table: 'readwrite', sendTaskResult: true } },
];

/** Functions the state machine invokes (statemachines/ciba.asl.json `${<Name>FunctionArn}` placeholders). */
export const WORKFLOW_FUNCTIONS: readonly WorkflowFunction[] = [
  { name: 'notify-device', access: { table: 'readwrite', publishDevice: true, sendTaskResult: true } },
];
