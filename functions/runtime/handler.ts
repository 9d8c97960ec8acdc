// Every Lambda handler is a middy handler made here: the invocation's log context (function name and Lambda request
// id on every log line, like Powertools' injectLambdaContext) around the handler's own code. HTTP handlers add
// their middlewares on top (runtime/http.ts).
import middy from '@middy/core';
import type { Context } from 'aws-lambda';
import { withLogContext } from './log.ts';

export function lambdaHandler<E, R>(name: string, fn: (event: E) => Promise<R>) {
  return middy<E, R>().handler((event: E, context: Context) =>
    withLogContext({ function: name, awsRequestId: context.awsRequestId }, () => fn(event)),
  );
}
