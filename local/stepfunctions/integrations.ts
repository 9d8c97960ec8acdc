// The service integrations the workflow's Task states call, with the results and error names AWS gives:
// - lambda:invoke.waitForTaskToken: the function registered in-process under the FunctionName (a name, partial or
//   full ARN) is called with the Payload; a function error fails the task with the function's error name and, as
//   cause, the error JSON {errorType, errorMessage}. The function's return value is not the result (the callback is).
// - dynamodb:updateItem: a real UpdateItem against the local DynamoDB; errors are DynamoDB.<Exception>, e.g.
//   DynamoDB.ConditionalCheckFailedException; the result is the UpdateItem output.
// - sqs:sendMessage: the local SQS in-process. A non-string MessageBody is sent as its JSON text; the result is
//   { MessageId, MD5OfMessageBody } (+ MD5OfMessageAttributes; AWS also adds SdkHttpMetadata and
//   SdkResponseMetadata, omitted here). QueueUrl must be an http(s) URL (LocalSqs matches its `<account>/<name>`
//   path, not its host). Errors are named as AWS names them (after its Java SDK's exception classes):
//   SQS.<Code>Exception for errors the SQS model defines (e.g. SQS.QueueDoesNotExistException),
//   SQS.AmazonSQSException for the others (e.g. MissingParameter: the cause says "… Error Code: <code> …"), and
//   SQS.SdkClientException when QueueUrl is not a URL.
import { randomUUID } from 'node:crypto';
import { DynamoDBClient, UpdateItemCommand } from '@aws-sdk/client-dynamodb';
import type { UpdateItemCommandInput } from '@aws-sdk/client-dynamodb';
import { LOCAL_CREDENTIALS } from '../dynamodb.ts';
import { SqsError } from '../sqs.ts';
import type { LocalSqs, SqsMessageAttribute } from '../sqs.ts';
import type { IntegrationName, Json, JsonObject } from './definition.ts';

/** A function the workflow can invoke (stands in for a Lambda function): called with the JSON payload. */
export type LocalFunction = (event: unknown) => Promise<unknown>;

export type IntegrationsOptions = {
  region: string;
  accountId: string;
  /** For dynamodb:updateItem. */
  dynamoDbEndpoint?: string;
  /** For sqs:sendMessage. */
  sqs?: LocalSqs;
  log: (line: string) => void;
};

export class Integrations {
  readonly #options: IntegrationsOptions;
  readonly #functions = new Map<string, LocalFunction>();
  #dynamo: DynamoDBClient | undefined;

  constructor(options: IntegrationsOptions) {
    this.#options = options;
  }

  registerFunction(name: string, fn: LocalFunction): void {
    this.#functions.set(name, fn);
  }

  /** Throws (at load) when an integration lacks its local service. */
  check(stateName: string, integration: IntegrationName): void {
    if (integration === 'dynamodb:updateItem' && !this.#options.dynamoDbEndpoint) {
      throw new Error(`state ${stateName}: dynamodb:updateItem needs the local DynamoDB endpoint`);
    }
    if (integration === 'sqs:sendMessage' && !this.#options.sqs)
      throw new Error(`state ${stateName}: sqs:sendMessage needs the local SQS`);
  }

  /** Calls the integration with the state's effective input (after Parameters). */
  async call(integration: IntegrationName, params: Json): Promise<Json> {
    const p = (params && typeof params === 'object' && !Array.isArray(params) ? params : {}) as JsonObject;
    switch (integration) {
      case 'lambda:invoke.waitForTaskToken':
        await this.#invoke(lambdaFunctionName(p.FunctionName), p.Payload ?? null);
        return null;
      case 'dynamodb:updateItem':
        return this.#updateItem(p);
      case 'sqs:sendMessage':
        return this.#sendMessage(p);
    }
  }

  close(): void {
    this.#dynamo?.destroy();
  }

  async #invoke(functionName: string, payload: Json): Promise<void> {
    const fn = this.#functions.get(functionName);
    if (!fn) {
      const arn = `arn:aws:lambda:${this.#options.region}:${this.#options.accountId}:function:${functionName}`;
      throw taskError('Lambda.ResourceNotFoundException', `Function not found: ${arn}`);
    }
    try {
      await fn(JSON.parse(JSON.stringify(payload)));
    } catch (err) {
      // As on AWS: a function error fails the task with the function's error type, the cause is the error JSON.
      const e = err instanceof Error ? err : new Error(String(err));
      this.#options.log(`[lambda] ${functionName}: ${e.name}: ${e.message}`);
      throw taskError(e.name || 'Error', JSON.stringify({ errorType: e.name || 'Error', errorMessage: e.message }));
    }
  }

  async #updateItem(params: JsonObject): Promise<Json> {
    const { region, dynamoDbEndpoint: endpoint } = this.#options;
    this.#dynamo ??= new DynamoDBClient({ endpoint, region, credentials: LOCAL_CREDENTIALS });
    try {
      const { $metadata: _metadata, ...output } = await this.#dynamo.send(
        new UpdateItemCommand(params as unknown as UpdateItemCommandInput),
      );
      return JSON.parse(JSON.stringify(output)) as Json;
    } catch (err) {
      const e = err as Error & { $metadata?: { httpStatusCode?: number; requestId?: string } };
      const status = e.$metadata?.httpStatusCode ?? 400;
      const details = `Service: DynamoDb, Status Code: ${status}, Request ID: ${e.$metadata?.requestId ?? 'local'}`;
      throw taskError(`DynamoDB.${e.name}`, `${e.message} (${details})`);
    }
  }

  #sendMessage(p: JsonObject): Json {
    const sqs = this.#options.sqs;
    const queueUrl = typeof p.QueueUrl === 'string' ? p.QueueUrl : '';
    if (!sqs || !/^https?:\/\/[^/]/i.test(queueUrl)) {
      throw taskError(
        'SQS.SdkClientException',
        `Unable to execute HTTP request: ${queueUrl}: Name or service not known`,
      );
    }
    // As AWS does: a JSON value other than a string is sent as its JSON text; null/absent is a missing parameter.
    const body =
      p.MessageBody === undefined || p.MessageBody === null
        ? ''
        : typeof p.MessageBody === 'string'
          ? p.MessageBody
          : JSON.stringify(p.MessageBody);
    try {
      return { ...sqs.sendMessage(queueUrl, body, (p.MessageAttributes ?? {}) as Record<string, SqsMessageAttribute>) };
    } catch (err) {
      if (!(err instanceof SqsError)) throw err;
      const details =
        `Service: AmazonSQS; Status Code: ${err.status}; Error Code: ${err.queryCode}; ` +
        `Request ID: ${randomUUID()}`;
      throw taskError(
        err.modeled ? `SQS.${err.code}Exception` : 'SQS.AmazonSQSException',
        `${err.message} (${details}; Proxy: null)`,
      );
    }
  }
}

/** The function name of a lambda:invoke FunctionName: a name, `name:qualifier`, a partial or a full ARN. */
function lambdaFunctionName(value: Json | undefined): string {
  const text = typeof value === 'string' ? value : '';
  const parts = text.split(':');
  if (text.startsWith('arn:')) return parts[6] ?? '';
  if (parts[1] === 'function') return parts[2] ?? ''; // 123456789012:function:name
  return parts[0] ?? '';
}

/** An error that fails the task with `name` (what Retry and Catch match) and `cause`. */
export function taskError(name: string, cause: string): Error {
  return Object.assign(new Error(cause), { name });
}
