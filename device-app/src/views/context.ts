// What every view gets from the app (main.ts), and what it gives back.
import type { DeviceApi } from '../api.ts';
import type { StoredDevice } from '../keystore.ts';
import type { PushState } from '../push.ts';

export type Context = {
  api: DeviceApi;
  /** The URL of the app's page (…/device/). */
  base: URL;
  /** Says `text` through the polite live region (screen readers), without moving focus. */
  announce(text: string): void;
  /** The server refused this device's assertions (it was removed, or its key is not the enrolled one). */
  rejected(): void;
  /** This browser is now enrolled. */
  enrolled(device: StoredDevice): Promise<void>;
  /** Forget this browser's enrolment (its key) here. */
  forget(): Promise<void>;
  /** Notifications were turned on (or tried): views showing their state update. */
  pushChanged(state: PushState): void;
};

export type View = {
  element: HTMLElement;
  /** Resolves when the view shows its first data (the app is interactive then). */
  ready: Promise<void>;
  /** Moves focus to the view's heading. */
  focus(): void;
  /** Stops the view's timers and listeners. */
  close(): void;
  /** Fetches now (a push message said something changed). */
  refresh?(): void;
};
