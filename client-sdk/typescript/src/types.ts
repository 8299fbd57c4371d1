/**
 * The API's message types under the names the app uses (`UserRole`,
 * `UserProfile`, `AuthSession`, …), generated from proto/ by ts-proto.
 */
export * from "../generated/occc/v1/audit.js";
export * from "../generated/occc/v1/auth.js";
export * from "../generated/occc/v1/config.js";
export * from "../generated/occc/v1/device_keys.js";
export * from "../generated/occc/v1/integrity.js";
export * from "../generated/occc/v1/skills.js";
export * from "../generated/occc/v1/system.js";
export * from "../generated/occc/v1/users.js";
export { PamPromptKind } from "../generated/occc/v1/biometric.js";
