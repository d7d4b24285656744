// Original file: federation.proto

import type { Task as _fedsynth_v1_Task, Task__Output as _fedsynth_v1_Task__Output } from '../../fedsynth/v1/Task.ts';

export interface PullTaskResponse {
  'task'?: (_fedsynth_v1_Task | null);
  'federation_done'?: (boolean);
}

export interface PullTaskResponse__Output {
  'task': (_fedsynth_v1_Task__Output | null);
  'federation_done': (boolean);
}
