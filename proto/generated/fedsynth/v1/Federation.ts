// Original file: federation.proto

import type * as grpc from '@grpc/grpc-js'
import type { MethodDefinition } from '@grpc/proto-loader'
import type { Chunk as _fedsynth_v1_Chunk, Chunk__Output as _fedsynth_v1_Chunk__Output } from '../../fedsynth/v1/Chunk.ts';
import type { FetchPayloadRequest as _fedsynth_v1_FetchPayloadRequest, FetchPayloadRequest__Output as _fedsynth_v1_FetchPayloadRequest__Output } from '../../fedsynth/v1/FetchPayloadRequest.ts';
import type { PullTaskRequest as _fedsynth_v1_PullTaskRequest, PullTaskRequest__Output as _fedsynth_v1_PullTaskRequest__Output } from '../../fedsynth/v1/PullTaskRequest.ts';
import type { PullTaskResponse as _fedsynth_v1_PullTaskResponse, PullTaskResponse__Output as _fedsynth_v1_PullTaskResponse__Output } from '../../fedsynth/v1/PullTaskResponse.ts';
import type { PushAck as _fedsynth_v1_PushAck, PushAck__Output as _fedsynth_v1_PushAck__Output } from '../../fedsynth/v1/PushAck.ts';
import type { Refusal as _fedsynth_v1_Refusal, Refusal__Output as _fedsynth_v1_Refusal__Output } from '../../fedsynth/v1/Refusal.ts';
import type { RegisterRequest as _fedsynth_v1_RegisterRequest, RegisterRequest__Output as _fedsynth_v1_RegisterRequest__Output } from '../../fedsynth/v1/RegisterRequest.ts';
import type { RegisterResponse as _fedsynth_v1_RegisterResponse, RegisterResponse__Output as _fedsynth_v1_RegisterResponse__Output } from '../../fedsynth/v1/RegisterResponse.ts';

export interface FederationClient extends grpc.Client {
  FetchPayload(argument: _fedsynth_v1_FetchPayloadRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedsynth_v1_Chunk__Output>;
  FetchPayload(argument: _fedsynth_v1_FetchPayloadRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedsynth_v1_Chunk__Output>;
  fetchPayload(argument: _fedsynth_v1_FetchPayloadRequest, metadata: grpc.Metadata, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedsynth_v1_Chunk__Output>;
  fetchPayload(argument: _fedsynth_v1_FetchPayloadRequest, options?: grpc.CallOptions): grpc.ClientReadableStream<_fedsynth_v1_Chunk__Output>;
  
  PullTask(argument: _fedsynth_v1_PullTaskRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PullTaskResponse__Output>): grpc.ClientUnaryCall;
  PullTask(argument: _fedsynth_v1_PullTaskRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedsynth_v1_PullTaskResponse__Output>): grpc.ClientUnaryCall;
  PullTask(argument: _fedsynth_v1_PullTaskRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PullTaskResponse__Output>): grpc.ClientUnaryCall;
  PullTask(argument: _fedsynth_v1_PullTaskRequest, callback: grpc.requestCallback<_fedsynth_v1_PullTaskResponse__Output>): grpc.ClientUnaryCall;
  pullTask(argument: _fedsynth_v1_PullTaskRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PullTaskResponse__Output>): grpc.ClientUnaryCall;
  pullTask(argument: _fedsynth_v1_PullTaskRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedsynth_v1_PullTaskResponse__Output>): grpc.ClientUnaryCall;
  pullTask(argument: _fedsynth_v1_PullTaskRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PullTaskResponse__Output>): grpc.ClientUnaryCall;
  pullTask(argument: _fedsynth_v1_PullTaskRequest, callback: grpc.requestCallback<_fedsynth_v1_PullTaskResponse__Output>): grpc.ClientUnaryCall;
  
  PushResult(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientWritableStream<_fedsynth_v1_Chunk>;
  PushResult(metadata: grpc.Metadata, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientWritableStream<_fedsynth_v1_Chunk>;
  PushResult(options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientWritableStream<_fedsynth_v1_Chunk>;
  PushResult(callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientWritableStream<_fedsynth_v1_Chunk>;
  pushResult(metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientWritableStream<_fedsynth_v1_Chunk>;
  pushResult(metadata: grpc.Metadata, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientWritableStream<_fedsynth_v1_Chunk>;
  pushResult(options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientWritableStream<_fedsynth_v1_Chunk>;
  pushResult(callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientWritableStream<_fedsynth_v1_Chunk>;
  
  RefuseTask(argument: _fedsynth_v1_Refusal, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientUnaryCall;
  RefuseTask(argument: _fedsynth_v1_Refusal, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientUnaryCall;
  RefuseTask(argument: _fedsynth_v1_Refusal, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientUnaryCall;
  RefuseTask(argument: _fedsynth_v1_Refusal, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientUnaryCall;
  refuseTask(argument: _fedsynth_v1_Refusal, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientUnaryCall;
  refuseTask(argument: _fedsynth_v1_Refusal, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientUnaryCall;
  refuseTask(argument: _fedsynth_v1_Refusal, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientUnaryCall;
  refuseTask(argument: _fedsynth_v1_Refusal, callback: grpc.requestCallback<_fedsynth_v1_PushAck__Output>): grpc.ClientUnaryCall;
  
  Register(argument: _fedsynth_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _fedsynth_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedsynth_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _fedsynth_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  Register(argument: _fedsynth_v1_RegisterRequest, callback: grpc.requestCallback<_fedsynth_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _fedsynth_v1_RegisterRequest, metadata: grpc.Metadata, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _fedsynth_v1_RegisterRequest, metadata: grpc.Metadata, callback: grpc.requestCallback<_fedsynth_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _fedsynth_v1_RegisterRequest, options: grpc.CallOptions, callback: grpc.requestCallback<_fedsynth_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  register(argument: _fedsynth_v1_RegisterRequest, callback: grpc.requestCallback<_fedsynth_v1_RegisterResponse__Output>): grpc.ClientUnaryCall;
  
}

export interface FederationHandlers extends grpc.UntypedServiceImplementation {
  FetchPayload: grpc.handleServerStreamingCall<_fedsynth_v1_FetchPayloadRequest__Output, _fedsynth_v1_Chunk>;
  
  PullTask: grpc.handleUnaryCall<_fedsynth_v1_PullTaskRequest__Output, _fedsynth_v1_PullTaskResponse>;
  
  PushResult: grpc.handleClientStreamingCall<_fedsynth_v1_Chunk__Output, _fedsynth_v1_PushAck>;
  
  RefuseTask: grpc.handleUnaryCall<_fedsynth_v1_Refusal__Output, _fedsynth_v1_PushAck>;
  
  Register: grpc.handleUnaryCall<_fedsynth_v1_RegisterRequest__Output, _fedsynth_v1_RegisterResponse>;
  
}

export interface FederationDefinition extends grpc.ServiceDefinition {
  FetchPayload: MethodDefinition<_fedsynth_v1_FetchPayloadRequest, _fedsynth_v1_Chunk, _fedsynth_v1_FetchPayloadRequest__Output, _fedsynth_v1_Chunk__Output>
  PullTask: MethodDefinition<_fedsynth_v1_PullTaskRequest, _fedsynth_v1_PullTaskResponse, _fedsynth_v1_PullTaskRequest__Output, _fedsynth_v1_PullTaskResponse__Output>
  PushResult: MethodDefinition<_fedsynth_v1_Chunk, _fedsynth_v1_PushAck, _fedsynth_v1_Chunk__Output, _fedsynth_v1_PushAck__Output>
  RefuseTask: MethodDefinition<_fedsynth_v1_Refusal, _fedsynth_v1_PushAck, _fedsynth_v1_Refusal__Output, _fedsynth_v1_PushAck__Output>
  Register: MethodDefinition<_fedsynth_v1_RegisterRequest, _fedsynth_v1_RegisterResponse, _fedsynth_v1_RegisterRequest__Output, _fedsynth_v1_RegisterResponse__Output>
}
