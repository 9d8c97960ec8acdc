// CDK entry point (cdk.json: `node infra/bin/app.ts`). The stack name is configurable so several copies
// (per developer, per stage) can live in one account.
import { App } from 'aws-cdk-lib';
import { CibaStack } from '../ciba-stack.ts';

const app = new App();
new CibaStack(app, process.env.CIBA_STACK_NAME ?? 'CibaStack');
