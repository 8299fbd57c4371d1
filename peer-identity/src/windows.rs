//! The calls into Windows: who a pipe's client is (impersonating it at
//! identification level), an object's owner and DACL, an account's SID,
//! and a security descriptor from SDDL.
//!
//! Invariant: the only `unsafe` is each FFI call, under a SAFETY comment;
//! every handle and every buffer Windows allocates has exactly one owner
//! that closes or frees it once; an impersonating thread reverts before it
//! does anything else, and the process aborts if it cannot; every failure
//! is an `io::Error` with the OS's code, never a panic.
#![allow(unsafe_code)]

use std::{ffi::c_void, io, os::windows::io::AsRawHandle, path::Path, ptr};

use windows_sys::Win32::{
    Foundation::{CloseHandle, HANDLE, LocalFree},
    Security::{
        ACCESS_ALLOWED_ACE, ACE_HEADER, ACL,
        Authorization::{
            ConvertSidToStringSidW, ConvertStringSecurityDescriptorToSecurityDescriptorW,
            GetNamedSecurityInfoW, GetSecurityInfo, SDDL_REVISION_1, SE_FILE_OBJECT,
            SE_KERNEL_OBJECT, SE_OBJECT_TYPE,
        },
        DACL_SECURITY_INFORMATION, GetAce, GetTokenInformation, LookupAccountNameW,
        OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID, RevertToSelf, SECURITY_ATTRIBUTES,
        SID_NAME_USE, SidTypeAlias, SidTypeGroup, TOKEN_QUERY, TOKEN_USER, TokenUser,
    },
    System::{
        Pipes::ImpersonateNamedPipeClient,
        Threading::{GetCurrentProcess, GetCurrentThread, OpenProcessToken, OpenThreadToken},
    },
};

use crate::{Ace, Descriptor, group_refusal, is_sid_text};

/// A kernel handle closed once, when dropped.
struct OwnedHandle(HANDLE);

impl Drop for OwnedHandle {
    fn drop(&mut self) {
        // SAFETY: the handle came from a successful open and is closed only here.
        unsafe { CloseHandle(self.0) };
    }
}

fn last_error(what: &str) -> io::Error {
    let os = io::Error::last_os_error();
    io::Error::new(os.kind(), format!("{what}: {os}"))
}

/// The user of the client at the other end of the server end `pipe`, from
/// the token it presented: the caller's thread impersonates it (at
/// identification level: it can be looked at, never acted as), reads the
/// token's user and reverts. The client must have sent at least one byte
/// (Windows refuses to impersonate before). Call it on a thread of its own
/// (`spawn_blocking`): nothing else runs there meanwhile.
pub fn pipe_client_user(pipe: &impl AsRawHandle) -> io::Result<String> {
    // SAFETY: `pipe` is a live server end borrowed for the call.
    let ok = unsafe { ImpersonateNamedPipeClient(pipe.as_raw_handle().cast()) };
    if ok == 0 {
        return Err(last_error("ImpersonateNamedPipeClient"));
    }
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: the pseudo-handle of this thread; OpenAsSelf (TRUE) checks
    // access as the process, not as the impersonated client.
    let opened = unsafe { OpenThreadToken(GetCurrentThread(), TOKEN_QUERY, 1, &mut token) };
    let opened = (opened != 0)
        .then_some(())
        .ok_or_else(|| last_error("OpenThreadToken"));
    // SAFETY: plain call; ends the impersonation of this thread.
    if unsafe { RevertToSelf() } == 0 {
        // This thread would go on as the client: no way out but to stop.
        std::process::abort();
    }
    opened?;
    let token = OwnedHandle(token);
    token_user(&token)
}

/// Opens the client end of pipe `name` asking for [`crate::CLIENT_ACCESS`]
/// only (not `GENERIC_WRITE`), for overlapped I/O, and letting the server
/// identify the client but never impersonate it beyond that.
pub fn open_pipe_client(name: &Path) -> io::Result<std::fs::File> {
    use std::os::windows::fs::OpenOptionsExt;
    const FILE_FLAG_OVERLAPPED: u32 = 0x4000_0000;
    const SECURITY_IDENTIFICATION: u32 = 0x0001_0000;
    std::fs::OpenOptions::new()
        .access_mode(crate::CLIENT_ACCESS)
        .custom_flags(FILE_FLAG_OVERLAPPED)
        .security_qos_flags(SECURITY_IDENTIFICATION)
        .open(name)
}

/// The user SID (as text) of this process.
pub fn current_user_sid() -> io::Result<String> {
    // SAFETY: the pseudo-handle of the current process needs no closing.
    let process = unsafe { GetCurrentProcess() };
    let mut token: HANDLE = ptr::null_mut();
    // SAFETY: the current-process pseudo-handle; `token` is a valid out pointer.
    let ok = unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) };
    if ok == 0 {
        return Err(last_error("OpenProcessToken"));
    }
    token_user(&OwnedHandle(token))
}

fn token_user(token: &OwnedHandle) -> io::Result<String> {
    let mut needed = 0u32;
    // SAFETY: a size query: null buffer of length 0, `needed` a valid out pointer.
    unsafe { GetTokenInformation(token.0, TokenUser, ptr::null_mut(), 0, &mut needed) };
    if needed == 0 || needed > 64 * 1024 {
        return Err(last_error("GetTokenInformation (size)"));
    }
    // u64 elements: aligned for TOKEN_USER.
    let mut buffer = vec![0u64; (needed as usize).div_ceil(8)];
    // SAFETY: the buffer holds at least `needed` bytes and is aligned for TOKEN_USER.
    let ok = unsafe {
        GetTokenInformation(
            token.0,
            TokenUser,
            buffer.as_mut_ptr().cast::<c_void>(),
            needed,
            &mut needed,
        )
    };
    if ok == 0 {
        return Err(last_error("GetTokenInformation"));
    }
    // SAFETY: Windows filled the buffer with a TOKEN_USER whose SID points into the buffer.
    let sid = unsafe { (*buffer.as_ptr().cast::<TOKEN_USER>()).User.Sid };
    sid_text(sid)
}

fn sid_text(sid: PSID) -> io::Result<String> {
    if sid.is_null() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "no SID (no owner)",
        ));
    }
    let mut text: *mut u16 = ptr::null_mut();
    // SAFETY: `sid` is a valid SID; Windows allocates `text`, freed below with LocalFree.
    let ok = unsafe { ConvertSidToStringSidW(sid, &mut text) };
    if ok == 0 || text.is_null() {
        return Err(last_error("ConvertSidToStringSidW"));
    }
    // SAFETY: `text` is NUL-terminated UTF-16 from ConvertSidToStringSidW.
    let length = unsafe { (0..).take_while(|&i| *text.add(i) != 0).count() };
    // SAFETY: `length` units before the NUL are readable.
    let units = unsafe { std::slice::from_raw_parts(text, length) };
    let sid = String::from_utf16_lossy(units);
    // SAFETY: allocated by ConvertSidToStringSidW, freed once.
    unsafe { LocalFree(text.cast()) };
    Ok(sid)
}

/// The SID (as text) of the account or group `name` (`occc`, `HOST\occc`).
pub fn account_sid(name: &str) -> io::Result<String> {
    account(name).map(|(sid, _)| sid)
}

/// The SID of group `name`, refused when `name` is a user, a well-known
/// group, or a group broader than one made for occcd ([`group_refusal`]).
pub fn group_sid(name: &str) -> io::Result<String> {
    let (sid, kind) = account(name)?;
    if ![SidTypeGroup, SidTypeAlias].contains(&kind) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?} is not a group of this machine or its domain"),
        ));
    }
    if let Some(why) = group_refusal(&sid) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{name:?}: {why}"),
        ));
    }
    Ok(sid)
}

fn account(name: &str) -> io::Result<(String, SID_NAME_USE)> {
    let wide: Vec<u16> = name.encode_utf16().chain([0]).collect();
    let mut sid = vec![0u64; 9]; // SECURITY_MAX_SID_SIZE (68 bytes), aligned
    let mut sid_bytes = 72u32;
    let mut domain = vec![0u16; 1024];
    let mut domain_length = 1024u32;
    let mut kind: SID_NAME_USE = 0;
    // SAFETY: every buffer is as long as the length passed with it.
    let ok = unsafe {
        LookupAccountNameW(
            ptr::null(),
            wide.as_ptr(),
            sid.as_mut_ptr().cast(),
            &mut sid_bytes,
            domain.as_mut_ptr(),
            &mut domain_length,
            &mut kind,
        )
    };
    if ok == 0 {
        return Err(last_error(&format!("no account or group named {name:?}")));
    }
    Ok((sid_text(sid.as_mut_ptr().cast())?, kind))
}

/// A security descriptor made from SDDL, freed when dropped.
#[derive(Debug)]
pub struct SecurityDescriptor(PSECURITY_DESCRIPTOR);

// SAFETY: the descriptor is immutable memory owned by this value alone.
unsafe impl Send for SecurityDescriptor {}
// SAFETY: as above; Windows only reads it.
unsafe impl Sync for SecurityDescriptor {}

impl SecurityDescriptor {
    /// Parses `sddl`; every SID in it must be SID text (see [`is_sid_text`]).
    pub fn from_sddl(sddl: &str) -> io::Result<Self> {
        let wide: Vec<u16> = sddl.encode_utf16().chain([0]).collect();
        let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
        // SAFETY: NUL-terminated input; Windows allocates the descriptor, freed in Drop.
        let ok = unsafe {
            ConvertStringSecurityDescriptorToSecurityDescriptorW(
                wide.as_ptr(),
                SDDL_REVISION_1,
                &mut descriptor,
                ptr::null_mut(),
            )
        };
        if ok == 0 || descriptor.is_null() {
            return Err(last_error(
                "ConvertStringSecurityDescriptorToSecurityDescriptorW",
            ));
        }
        Ok(Self(descriptor))
    }

    /// Attributes naming this descriptor, not inheritable; valid while `self` lives.
    #[must_use]
    pub fn attributes(&self) -> SECURITY_ATTRIBUTES {
        SECURITY_ATTRIBUTES {
            nLength: size_of::<SECURITY_ATTRIBUTES>() as u32,
            lpSecurityDescriptor: self.0,
            bInheritHandle: 0,
        }
    }
}

impl Drop for SecurityDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by ConvertStringSecurityDescriptorToSecurityDescriptorW, freed once.
        unsafe { LocalFree(self.0.cast()) };
    }
}

/// The descriptor for occcd's pipe: see [`crate::pipe_sddl`]. `group` is
/// the configured group's name, looked up here.
pub fn pipe_security(group: Option<&str>) -> io::Result<SecurityDescriptor> {
    let owner = current_user_sid()?;
    let group = group.map(group_sid).transpose()?;
    for sid in std::iter::once(&owner).chain(group.as_ref()) {
        if !is_sid_text(sid) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("unexpected SID text {sid:?}"),
            ));
        }
    }
    SecurityDescriptor::from_sddl(&crate::pipe_sddl(&owner, group.as_deref()))
}

/// Frees a security descriptor Windows allocated, once.
struct LocalDescriptor(PSECURITY_DESCRIPTOR);

impl Drop for LocalDescriptor {
    fn drop(&mut self) {
        // SAFETY: allocated by Get(Named)SecurityInfo, freed only here.
        unsafe { LocalFree(self.0.cast()) };
    }
}

/// The owner and DACL of the object `handle` is open on (a pipe: the
/// handle needs `READ_CONTROL`).
pub fn handle_descriptor(handle: &impl AsRawHandle) -> io::Result<Descriptor> {
    read_descriptor(|owner, dacl, descriptor| {
        // SAFETY: a live handle borrowed for the call; valid out pointers.
        unsafe {
            GetSecurityInfo(
                handle.as_raw_handle().cast(),
                SE_KERNEL_OBJECT,
                OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                owner,
                ptr::null_mut(),
                dacl,
                ptr::null_mut(),
                descriptor,
            )
        }
    })
}

/// The owner and DACL of the file or folder at `path`.
pub fn path_descriptor(path: &Path) -> io::Result<Descriptor> {
    let wide: Vec<u16> = path
        .as_os_str()
        .to_string_lossy()
        .encode_utf16()
        .chain([0])
        .collect();
    let kind: SE_OBJECT_TYPE = SE_FILE_OBJECT;
    read_descriptor(|owner, dacl, descriptor| {
        // SAFETY: NUL-terminated path; valid out pointers.
        unsafe {
            GetNamedSecurityInfoW(
                wide.as_ptr(),
                kind,
                OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
                owner,
                ptr::null_mut(),
                dacl,
                ptr::null_mut(),
                descriptor,
            )
        }
    })
}

fn read_descriptor(
    get: impl FnOnce(*mut PSID, *mut *mut ACL, *mut PSECURITY_DESCRIPTOR) -> u32,
) -> io::Result<Descriptor> {
    let (mut owner, mut dacl): (PSID, *mut ACL) = (ptr::null_mut(), ptr::null_mut());
    let mut descriptor: PSECURITY_DESCRIPTOR = ptr::null_mut();
    let code = get(&mut owner, &mut dacl, &mut descriptor);
    if code != 0 {
        let os = io::Error::from_raw_os_error(code as i32);
        return Err(io::Error::new(
            os.kind(),
            format!("reading its security: {os}"),
        ));
    }
    // `owner` and `dacl` point into `descriptor`, alive until `_freed` drops.
    let _freed = LocalDescriptor(descriptor);
    let owner = sid_text(owner)?;
    if dacl.is_null() {
        return Ok(Descriptor { owner, aces: None });
    }
    // SAFETY: `dacl` points at the ACL header inside the live descriptor.
    let count = unsafe { (*dacl).AceCount };
    let mut aces = Vec::with_capacity(usize::from(count));
    for index in 0..u32::from(count) {
        let mut entry: *mut c_void = ptr::null_mut();
        // SAFETY: `index` is below the ACL's count; `entry` is a valid out pointer.
        if unsafe { GetAce(dacl, index, &mut entry) } == 0 {
            return Err(last_error("GetAce"));
        }
        // SAFETY: every ACE starts with an ACE_HEADER.
        let header: ACE_HEADER = unsafe { *entry.cast::<ACE_HEADER>() };
        // INHERIT_ONLY_ACE: for what is created inside, not for this object.
        if header.AceFlags & 0x08 != 0 {
            continue;
        }
        // Allowed (0) and denied (1) ACEs share ACCESS_ALLOWED_ACE's layout;
        // other kinds (object, callback, audit) are judged as allowing all.
        match header.AceType {
            0 | 1 => {
                let ace = entry.cast::<ACCESS_ALLOWED_ACE>();
                // SAFETY: the layout above; the SID starts at `SidStart`.
                let (mask, sid) = unsafe { ((*ace).Mask, (&raw mut (*ace).SidStart).cast()) };
                aces.push(Ace {
                    allows: header.AceType == 0,
                    sid: sid_text(sid)?,
                    mask,
                });
            }
            _ => aces.push(Ace {
                allows: true,
                sid: format!("(an entry of kind {})", header.AceType),
                mask: u32::MAX,
            }),
        }
    }
    Ok(Descriptor {
        owner,
        aces: Some(aces),
    })
}
