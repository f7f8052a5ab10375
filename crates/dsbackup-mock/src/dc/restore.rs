//! ad_restore: restore sessions, the expiry-token check, the restore marker, and the calls
//! that take only a binding (`HrRIsNTDSOnline`, `HrRRestoreSetCurrentLogNumber`,
//! `HrRRestoreCheckLogsForBackup`).

use std::time::SystemTime;

use dsbackup_proto::iface::ad_restore::{
    AdRestoreRequest, AdRestoreResponse, HrRIsNTDSOnlineRequest, HrRIsNTDSOnlineResponse,
    HrRRestoreCheckLogsForBackupRequest, HrRRestoreCheckLogsForBackupResponse,
    HrRRestoreEndRequest, HrRRestoreEndResponse, HrRRestoreGetDatabaseLocationsRequest,
    HrRRestoreGetDatabaseLocationsResponse, HrRRestorePrepareRequest, HrRRestorePrepareResponse,
    HrRRestoreRegisterCompleteRequest, HrRRestoreRegisterCompleteResponse,
    HrRRestoreRegisterRequest, HrRRestoreRegisterResponse, HrRRestoreSetCurrentLogNumberRequest,
    HrRRestoreSetCurrentLogNumberResponse, RESTORE_TYPE_CATCHUP,
};
use dsbackup_proto::ndr::ContextHandle;
use dsbackup_proto::{BftKind, NameEntry};
use dsbackup_proto::{ExpiryToken, Status};

use super::backup::BACKUP_DISABLE_INCREMENTAL;
use super::{Caller, ConnectionId, MockDc, Need, State, filetime};
use crate::config::DsMode;
use crate::marker::{RestoreMapping, RestoreMarker, RestoreState};
use crate::ntds::{DATABASE_FILE, Layout, MAX_GENERATION};

/// One restore session.
#[derive(Debug)]
pub(crate) struct RestoreSession {
    pub(crate) connection: ConnectionId,
    pub(crate) last_activity: SystemTime,
    /// Opened without an expiry token: only `HrRRestoreGetDatabaseLocations` is allowed.
    restricted: bool,
    /// This session registered the current restore marker.
    registered: bool,
}

impl RestoreSession {
    /// Records a call at `now` (a call that arrives late keeps the later time).
    pub(super) fn touch(&mut self, now: SystemTime) {
        self.last_activity = self.last_activity.max(now);
    }
}

impl MockDc {
    /// Opnum 0, `HrRIsNTDSOnline`: TRUE when the directory service runs, FALSE in restore
    /// mode (also while a restore marker blocks startup). Needs the backup or the restore
    /// privilege (the backup workflow asks first, too).
    pub fn is_ntds_online(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRIsNTDSOnlineRequest,
    ) -> HrRIsNTDSOnlineResponse {
        let _ = (now, request); // Uniform signature: this operation needs neither.
        if let Err(status) = self.authorize(caller, Need::BackupOrRestore) {
            return HrRIsNTDSOnlineResponse {
                pf_online: 0,
                status,
            };
        }
        HrRIsNTDSOnlineResponse {
            pf_online: i32::from(self.lock().mode == DsMode::Online),
            status: Status::SUCCESS,
        }
    }

    /// Opnum 1, `HrRRestorePrepare`: starts a restore session.
    ///
    /// | condition | status |
    /// | --- | --- |
    /// | no restore privilege (or auth level too low) | `ERROR_ACCESS_DENIED` |
    /// | `rtFlag` not 0 or `RESTORE_TYPE_CATCHUP` | `ERROR_INVALID_PARAMETER` |
    /// | no token | success: a *restricted* session (only opnum 4), online or not |
    /// | the directory service is online | `ERROR_ACCESS_DENIED` |
    /// | the token is not 16 bytes or not version 1 | `hrUnknownExpiryTokenFormat` |
    /// | `backup_time` + tombstone lifetime is before `now` | `hrContentsExpired` |
    pub fn restore_prepare(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRRestorePrepareRequest,
    ) -> HrRRestorePrepareResponse {
        let refuse = |status| HrRRestorePrepareResponse {
            ph_context: ContextHandle::NULL,
            status,
        };
        if let Err(status) = self.authorize(caller, Need::Restore) {
            return refuse(status);
        }
        if !matches!(request.rt_flag, 0 | RESTORE_TYPE_CATCHUP) {
            return refuse(Status::ERROR_INVALID_PARAMETER);
        }
        let mut state = self.lock();
        let restricted = match &request.pb_expiry_token {
            None => true,
            Some(bytes) => {
                if state.mode == DsMode::Online {
                    return refuse(Status::ERROR_ACCESS_DENIED);
                }
                // One format in the IDL: 16 bytes, version 1, and `cbExpiryToken` saying so.
                // Anything else (a 1 MiB blob, a length that disagrees) is refused before it
                // is looked into.
                if usize::try_from(request.cb_expiry_token).ok() != Some(bytes.len()) {
                    return refuse(Status::HR_UNKNOWN_EXPIRY_TOKEN_FORMAT);
                }
                let Ok(token) = ExpiryToken::decode(bytes) else {
                    return refuse(Status::HR_UNKNOWN_EXPIRY_TOKEN_FORMAT);
                };
                if token.is_expired(filetime(now)) {
                    return refuse(Status::HR_CONTENTS_EXPIRED);
                }
                false
            }
        };
        let handle = self.issue_handle(&mut state);
        state.restores.insert(
            handle,
            RestoreSession {
                connection: caller.connection,
                last_activity: now,
                restricted,
                registered: false,
            },
        );
        HrRRestorePrepareResponse {
            ph_context: handle,
            status: Status::SUCCESS,
        }
    }

    /// Opnum 2, `HrRRestoreRegister`: registers the restore and leaves the restore marker
    /// (in memory and in the state directory).
    ///
    /// | condition | status |
    /// | --- | --- |
    /// | restricted session | `hrMissingExpiryToken` |
    /// | the directory service is online | `ERROR_ACCESS_DENIED` |
    /// | `genLow > genHigh`, `genHigh > 0xFFFFF`, an empty path, `crstmap` not the map's length | `ERROR_INVALID_PARAMETER` |
    /// | another live session registered a restore not completed yet | `hrRestoreInProgress` |
    /// | the marker cannot be written | `hrError` |
    pub fn restore_register(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRRestoreRegisterRequest,
    ) -> HrRRestoreRegisterResponse {
        let status = self.authorize(caller, Need::Restore).and_then(|()| {
            let mut state = self.lock();
            let session = restore_session(&mut state, caller, request.h_context)?;
            session.touch(now);
            if session.restricted {
                return Err(Status::HR_MISSING_EXPIRY_TOKEN);
            }
            if state.mode == DsMode::Online {
                return Err(Status::ERROR_ACCESS_DENIED);
            }
            let map_len = request.rgrstmap.as_ref().map_or(0, Vec::len);
            if request.gen_low > request.gen_high
                || request.gen_high > MAX_GENERATION
                || request.wsz_checkpoint_file_path.is_empty()
                || request.wsz_log_path.is_empty()
                || request.wsz_backup_log_path.is_empty()
                || usize::try_from(request.crstmap).ok() != Some(map_len)
            {
                return Err(Status::ERROR_INVALID_PARAMETER);
            }
            let pending_elsewhere = state
                .marker
                .as_ref()
                .is_some_and(|m| m.state == RestoreState::Registered)
                && state
                    .marker_owner
                    .is_some_and(|owner| owner != request.h_context);
            if pending_elsewhere {
                return Err(Status::HR_RESTORE_IN_PROGRESS);
            }
            let marker = RestoreMarker {
                state: RestoreState::Registered,
                checkpoint_file_path: request.wsz_checkpoint_file_path.clone(),
                log_path: request.wsz_log_path.clone(),
                backup_log_path: request.wsz_backup_log_path.clone(),
                mappings: request
                    .rgrstmap
                    .iter()
                    .flatten()
                    .map(|m| RestoreMapping {
                        database_name: m.wsz_database_name.clone(),
                        new_database_name: m.wsz_new_database_name.clone(),
                    })
                    .collect(),
                gen_low: request.gen_low,
                gen_high: request.gen_high,
                registered_at: filetime(now),
            };
            marker
                .store(&self.shared.state_dir)
                .map_err(|_| Status::HR_ERROR)?;
            if let Some(session) = state.restores.get_mut(&request.h_context) {
                session.registered = true;
            }
            state.marker = Some(marker);
            state.marker_owner = Some(request.h_context);
            Ok(())
        });
        HrRRestoreRegisterResponse {
            status: status.err().unwrap_or(Status::SUCCESS),
        }
    }

    /// Opnum 3, `HrRRestoreRegisterComplete`: records the caller's outcome in the marker.
    /// `hrMissingExpiryToken` for a restricted session, `ERROR_INVALID_PARAMETER` when this
    /// session registered nothing, `hrError` when the marker cannot be written.
    pub fn restore_register_complete(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRRestoreRegisterCompleteRequest,
    ) -> HrRRestoreRegisterCompleteResponse {
        let status = self.authorize(caller, Need::Restore).and_then(|()| {
            let mut state = self.lock();
            let session = restore_session(&mut state, caller, request.h_context)?;
            session.touch(now);
            if session.restricted {
                return Err(Status::HR_MISSING_EXPIRY_TOKEN);
            }
            if !session.registered {
                return Err(Status::ERROR_INVALID_PARAMETER);
            }
            let Some(marker) = state.marker.as_mut() else {
                return Err(Status::ERROR_INVALID_PARAMETER);
            };
            marker.state = RestoreState::Completed {
                hr_restore_state: request.hr_restore_state.0,
            };
            marker
                .store(&self.shared.state_dir)
                .map_err(|_| Status::HR_ERROR)?;
            Ok(())
        });
        HrRRestoreRegisterCompleteResponse {
            status: status.err().unwrap_or(Status::SUCCESS),
        }
    }

    /// Opnum 4, `HrRRestoreGetDatabaseLocations`: `BFT_NTDS_DATABASE` `\\<dc>\<dir>\ntds.dit`,
    /// `BFT_LOG_DIR` and `BFT_CHECKPOINT_DIR` `\\<dc>\<dir>`.
    ///
    /// Allowed on restricted sessions. Also accepts the handle of the active backup session
    /// (from any connection: a client asks on its own ad_restore association), as the public
    /// API allows this call at backup time; the backup privilege then suffices.
    pub fn restore_get_database_locations(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRRestoreGetDatabaseLocationsRequest,
    ) -> HrRRestoreGetDatabaseLocationsResponse {
        let refuse = |status| HrRRestoreGetDatabaseLocationsResponse::new(&[], status);
        if let Err(status) = self.authorize(caller, Need::BackupOrRestore) {
            return refuse(status);
        }
        let privileges = self.privileges(caller);
        {
            let mut state = self.lock();
            let handle = request.h_context;
            if let Ok(session) = restore_session(&mut state, caller, handle) {
                if !privileges.restore {
                    return refuse(Status::ERROR_ACCESS_DENIED);
                }
                session.touch(now);
            } else if let Some(session) = state
                .backup
                .as_mut()
                .filter(|s| !handle.is_null() && s.handle == handle)
            {
                if !privileges.backup {
                    return refuse(Status::ERROR_ACCESS_DENIED);
                }
                session.touch(now);
            } else {
                return refuse(Status::ERROR_INVALID_PARAMETER);
            }
        }
        let directory = self.unc_directory();
        let entries = [
            NameEntry::new(
                BftKind::NTDS_DATABASE,
                format!("{directory}\\{DATABASE_FILE}"),
            ),
            NameEntry::new(BftKind::LOG_DIR, directory.clone()),
            NameEntry::new(BftKind::CHECKPOINT_DIR, directory),
        ];
        HrRRestoreGetDatabaseLocationsResponse::new(&entries, Status::SUCCESS)
    }

    /// Opnum 5, `HrRRestoreEnd`: ends the session; the handle comes back null. A handle that is
    /// not this connection's restore session gets `ERROR_INVALID_PARAMETER` and comes back
    /// unchanged. The restore marker stays.
    pub fn restore_end(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRRestoreEndRequest,
    ) -> HrRRestoreEndResponse {
        let _ = now; // Uniform signature: this operation needs no time.
        let status = self.authorize(caller, Need::Nothing).and_then(|()| {
            let mut state = self.lock();
            restore_session(&mut state, caller, request.ph_context)?;
            Self::remove_restore(&mut state, request.ph_context);
            Ok(())
        });
        match status {
            Ok(()) => HrRRestoreEndResponse {
                ph_context: ContextHandle::NULL,
                status: Status::SUCCESS,
            },
            Err(status) => HrRRestoreEndResponse {
                ph_context: request.ph_context,
                status,
            },
        }
    }

    /// Opnum 6, `HrRRestoreSetCurrentLogNumber`: records the current backup log number;
    /// `0xFFFFFFFF` (`BACKUP_DISABLE_INCREMENTAL`) refuses logs-only backups until the next
    /// full one. A number above `0xFFFFF` (other than that) gets `ERROR_INVALID_PARAMETER`.
    pub fn restore_set_current_log_number(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRRestoreSetCurrentLogNumberRequest,
    ) -> HrRRestoreSetCurrentLogNumberResponse {
        let _ = now; // Uniform signature: this operation needs no time.
        let status = self.authorize(caller, Need::Restore).and_then(|()| {
            let number = request.dw_current_log;
            if number > MAX_GENERATION && number != BACKUP_DISABLE_INCREMENTAL {
                return Err(Status::ERROR_INVALID_PARAMETER);
            }
            self.lock().current_log_number = Some(number);
            Ok(())
        });
        HrRRestoreSetCurrentLogNumberResponse {
            status: status.err().unwrap_or(Status::SUCCESS),
        }
    }

    /// Opnum 7, `HrRRestoreCheckLogsForBackup`: 0 when every log from the checkpoint
    /// generation to the current one is present, `hrLogFileNotFound` when one is missing (or
    /// there is no log at all). The annotation is not interpreted (one server, one log
    /// stream).
    pub fn restore_check_logs_for_backup(
        &self,
        caller: &Caller,
        now: SystemTime,
        request: &HrRRestoreCheckLogsForBackupRequest,
    ) -> HrRRestoreCheckLogsForBackupResponse {
        let _ = (now, request); // Uniform signature: this operation needs neither.
        let status = self
            .authorize(caller, Need::BackupOrRestore)
            .and_then(|()| {
                let layout =
                    Layout::scan(&self.shared.config.root).map_err(|_| Status::HR_ERROR)?;
                let (Some(checkpoint), Some(current)) = (layout.checkpoint, layout.current())
                else {
                    return Err(Status::HR_LOG_FILE_NOT_FOUND);
                };
                if (checkpoint..=current).all(|generation| layout.logs.contains_key(&generation)) {
                    Ok(())
                } else {
                    Err(Status::HR_LOG_FILE_NOT_FOUND)
                }
            });
        HrRRestoreCheckLogsForBackupResponse {
            status: status.err().unwrap_or(Status::SUCCESS),
        }
    }
}

/// The restore session `handle` names, if it is one of the caller connection's.
fn restore_session<'s>(
    state: &'s mut State,
    caller: &Caller,
    handle: ContextHandle,
) -> Result<&'s mut RestoreSession, Status> {
    match state.restores.get_mut(&handle) {
        Some(session) if !handle.is_null() && session.connection == caller.connection => {
            Ok(session)
        }
        _ => Err(Status::ERROR_INVALID_PARAMETER),
    }
}

/// The response to `request` carrying only `status` (a scripted fault).
pub(crate) fn failure(request: &AdRestoreRequest, status: Status) -> AdRestoreResponse {
    match request {
        AdRestoreRequest::HrRIsNTDSOnline(_) => {
            AdRestoreResponse::HrRIsNTDSOnline(HrRIsNTDSOnlineResponse {
                pf_online: 0,
                status,
            })
        }
        AdRestoreRequest::HrRRestorePrepare(_) => {
            AdRestoreResponse::HrRRestorePrepare(HrRRestorePrepareResponse {
                ph_context: ContextHandle::NULL,
                status,
            })
        }
        AdRestoreRequest::HrRRestoreRegister(_) => {
            AdRestoreResponse::HrRRestoreRegister(HrRRestoreRegisterResponse { status })
        }
        AdRestoreRequest::HrRRestoreRegisterComplete(_) => {
            AdRestoreResponse::HrRRestoreRegisterComplete(HrRRestoreRegisterCompleteResponse {
                status,
            })
        }
        AdRestoreRequest::HrRRestoreGetDatabaseLocations(_) => {
            AdRestoreResponse::HrRRestoreGetDatabaseLocations(
                HrRRestoreGetDatabaseLocationsResponse::new(&[], status),
            )
        }
        AdRestoreRequest::HrRRestoreEnd(r) => {
            AdRestoreResponse::HrRRestoreEnd(HrRRestoreEndResponse {
                ph_context: r.ph_context,
                status,
            })
        }
        AdRestoreRequest::HrRRestoreSetCurrentLogNumber(_) => {
            AdRestoreResponse::HrRRestoreSetCurrentLogNumber(
                HrRRestoreSetCurrentLogNumberResponse { status },
            )
        }
        AdRestoreRequest::HrRRestoreCheckLogsForBackup(_) => {
            AdRestoreResponse::HrRRestoreCheckLogsForBackup(HrRRestoreCheckLogsForBackupResponse {
                status,
            })
        }
    }
}
