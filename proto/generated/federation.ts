import type * as grpc from '@grpc/grpc-js';
import type { MessageTypeDefinition } from '@grpc/proto-loader';

import type { Chunk as _fedsynth_v1_Chunk, Chunk__Output as _fedsynth_v1_Chunk__Output } from './fedsynth/v1/Chunk.ts';
import type { CommitteeKey as _fedsynth_v1_CommitteeKey, CommitteeKey__Output as _fedsynth_v1_CommitteeKey__Output } from './fedsynth/v1/CommitteeKey.ts';
import type { Contribution as _fedsynth_v1_Contribution, Contribution__Output as _fedsynth_v1_Contribution__Output } from './fedsynth/v1/Contribution.ts';
import type { DecryptionInput as _fedsynth_v1_DecryptionInput, DecryptionInput__Output as _fedsynth_v1_DecryptionInput__Output } from './fedsynth/v1/DecryptionInput.ts';
import type { FederationClient as _fedsynth_v1_FederationClient, FederationDefinition as _fedsynth_v1_FederationDefinition } from './fedsynth/v1/Federation.ts';
import type { FetchPayloadRequest as _fedsynth_v1_FetchPayloadRequest, FetchPayloadRequest__Output as _fedsynth_v1_FetchPayloadRequest__Output } from './fedsynth/v1/FetchPayloadRequest.ts';
import type { Header as _fedsynth_v1_Header, Header__Output as _fedsynth_v1_Header__Output } from './fedsynth/v1/Header.ts';
import type { MemberCiphertexts as _fedsynth_v1_MemberCiphertexts, MemberCiphertexts__Output as _fedsynth_v1_MemberCiphertexts__Output } from './fedsynth/v1/MemberCiphertexts.ts';
import type { PartialDecryption as _fedsynth_v1_PartialDecryption, PartialDecryption__Output as _fedsynth_v1_PartialDecryption__Output } from './fedsynth/v1/PartialDecryption.ts';
import type { PullTaskRequest as _fedsynth_v1_PullTaskRequest, PullTaskRequest__Output as _fedsynth_v1_PullTaskRequest__Output } from './fedsynth/v1/PullTaskRequest.ts';
import type { PullTaskResponse as _fedsynth_v1_PullTaskResponse, PullTaskResponse__Output as _fedsynth_v1_PullTaskResponse__Output } from './fedsynth/v1/PullTaskResponse.ts';
import type { PushAck as _fedsynth_v1_PushAck, PushAck__Output as _fedsynth_v1_PushAck__Output } from './fedsynth/v1/PushAck.ts';
import type { Refusal as _fedsynth_v1_Refusal, Refusal__Output as _fedsynth_v1_Refusal__Output } from './fedsynth/v1/Refusal.ts';
import type { RegisterRequest as _fedsynth_v1_RegisterRequest, RegisterRequest__Output as _fedsynth_v1_RegisterRequest__Output } from './fedsynth/v1/RegisterRequest.ts';
import type { RegisterResponse as _fedsynth_v1_RegisterResponse, RegisterResponse__Output as _fedsynth_v1_RegisterResponse__Output } from './fedsynth/v1/RegisterResponse.ts';
import type { SignedShare as _fedsynth_v1_SignedShare, SignedShare__Output as _fedsynth_v1_SignedShare__Output } from './fedsynth/v1/SignedShare.ts';
import type { Task as _fedsynth_v1_Task, Task__Output as _fedsynth_v1_Task__Output } from './fedsynth/v1/Task.ts';

type SubtypeConstructor<Constructor extends new (...args: any) => any, Subtype> = {
  new(...args: ConstructorParameters<Constructor>): Subtype;
};

export interface ProtoGrpcType {
  fedsynth: {
    v1: {
      Chunk: MessageTypeDefinition<_fedsynth_v1_Chunk, _fedsynth_v1_Chunk__Output>
      CommitteeKey: MessageTypeDefinition<_fedsynth_v1_CommitteeKey, _fedsynth_v1_CommitteeKey__Output>
      Contribution: MessageTypeDefinition<_fedsynth_v1_Contribution, _fedsynth_v1_Contribution__Output>
      DecryptionInput: MessageTypeDefinition<_fedsynth_v1_DecryptionInput, _fedsynth_v1_DecryptionInput__Output>
      Federation: SubtypeConstructor<typeof grpc.Client, _fedsynth_v1_FederationClient> & { service: _fedsynth_v1_FederationDefinition }
      FetchPayloadRequest: MessageTypeDefinition<_fedsynth_v1_FetchPayloadRequest, _fedsynth_v1_FetchPayloadRequest__Output>
      Header: MessageTypeDefinition<_fedsynth_v1_Header, _fedsynth_v1_Header__Output>
      MemberCiphertexts: MessageTypeDefinition<_fedsynth_v1_MemberCiphertexts, _fedsynth_v1_MemberCiphertexts__Output>
      PartialDecryption: MessageTypeDefinition<_fedsynth_v1_PartialDecryption, _fedsynth_v1_PartialDecryption__Output>
      PullTaskRequest: MessageTypeDefinition<_fedsynth_v1_PullTaskRequest, _fedsynth_v1_PullTaskRequest__Output>
      PullTaskResponse: MessageTypeDefinition<_fedsynth_v1_PullTaskResponse, _fedsynth_v1_PullTaskResponse__Output>
      PushAck: MessageTypeDefinition<_fedsynth_v1_PushAck, _fedsynth_v1_PushAck__Output>
      Refusal: MessageTypeDefinition<_fedsynth_v1_Refusal, _fedsynth_v1_Refusal__Output>
      RegisterRequest: MessageTypeDefinition<_fedsynth_v1_RegisterRequest, _fedsynth_v1_RegisterRequest__Output>
      RegisterResponse: MessageTypeDefinition<_fedsynth_v1_RegisterResponse, _fedsynth_v1_RegisterResponse__Output>
      SignedShare: MessageTypeDefinition<_fedsynth_v1_SignedShare, _fedsynth_v1_SignedShare__Output>
      Task: MessageTypeDefinition<_fedsynth_v1_Task, _fedsynth_v1_Task__Output>
    }
  }
}

