//! A hostile ad_restore through the public API: whatever locations it names, files land only
//! beneath the operator's mapped directory, never through a link, never over an existing file
//! unasked; nothing is registered when a target is refused.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use bytes::Bytes;
use dsbackup_client::{
    AuthLevel, BackupOptions, Client, ClientConfig, Endpoint, Error, NoProgress, PathMap,
    RestoreOptions, backup_to_dir, plan_restore_from_dir, restore_from_dir,
};
use dsbackup_proto::iface::ad_restore::{
    self, AdRestoreRequest, AdRestoreResponse, HrRRestoreEndResponse,
    HrRRestoreGetDatabaseLocationsResponse, HrRRestorePrepareResponse,
    HrRRestoreRegisterCompleteResponse, HrRRestoreRegisterResponse,
};
use dsbackup_proto::{BftKind, ContextHandle, DataRep, NameEntry, Status, SyntaxId};
use dsbackup_transport::{
    CallContext, CallError, CallFuture, RpcInterface, RunningServer, Server, ServerOptions,
};

use crate::common::{BACKUP_USER, Dc, assert_no_bindings};

/// An ad_restore that names the locations of its script and counts registrations.
struct Locations {
    entries: Vec<NameEntry>,
    registered: AtomicU32,
}

impl RpcInterface for Locations {
    fn syntax(&self) -> SyntaxId {
        ad_restore::INTERFACE.syntax()
    }

    fn opnums(&self) -> u16 {
        8
    }

    fn call(
        self: Arc<Self>,
        ctx: CallContext,
        opnum: u16,
        stub: Bytes,
        drep: DataRep,
    ) -> CallFuture {
        Box::pin(async move {
            let handle = ContextHandle {
                attributes: 0,
                uuid: dsbackup_proto::Uuid::from_str_const("11111111-2222-3333-4444-555555555555"),
            };
            let response = match AdRestoreRequest::decode(opnum, drep, &stub)? {
                AdRestoreRequest::HrRRestorePrepare(_) => {
                    AdRestoreResponse::HrRRestorePrepare(HrRRestorePrepareResponse {
                        ph_context: handle,
                        status: Status::SUCCESS,
                    })
                }
                AdRestoreRequest::HrRRestoreGetDatabaseLocations(_) => {
                    AdRestoreResponse::HrRRestoreGetDatabaseLocations(
                        HrRRestoreGetDatabaseLocationsResponse::new(&self.entries, Status::SUCCESS),
                    )
                }
                AdRestoreRequest::HrRRestoreRegister(_) => {
                    self.registered.fetch_add(1, Ordering::SeqCst);
                    AdRestoreResponse::HrRRestoreRegister(HrRRestoreRegisterResponse {
                        status: Status::SUCCESS,
                    })
                }
                AdRestoreRequest::HrRRestoreRegisterComplete(_) => {
                    AdRestoreResponse::HrRRestoreRegisterComplete(
                        HrRRestoreRegisterCompleteResponse {
                            status: Status::SUCCESS,
                        },
                    )
                }
                AdRestoreRequest::HrRRestoreEnd(_) => {
                    AdRestoreResponse::HrRRestoreEnd(HrRRestoreEndResponse {
                        ph_context: ContextHandle::NULL,
                        status: Status::SUCCESS,
                    })
                }
                _ => return Err(CallError::Fault(dsbackup_proto::FaultStatus::CANT_PERFORM)),
            };
            Ok(response.encode(ctx.reply_drep())?.into())
        })
    }
}

async fn hostile(entries: Vec<NameEntry>) -> (RunningServer, Arc<Locations>, Client) {
    let mut options = ServerOptions::default();
    options.epm_listen = None;
    let mut server = Server::new(options);
    let script = Arc::new(Locations {
        entries,
        registered: AtomicU32::new(0),
    });
    server.register(Arc::clone(&script) as Arc<dyn RpcInterface>);
    let server = server.start().await.unwrap();
    let config = ClientConfig::new("127.0.0.1")
        .auth_level(AuthLevel::NONE)
        .endpoint(Endpoint::Port(server.local_addr().port()));
    (server, script, Client::new(config).unwrap())
}

/// Every file under `dir` with its contents, links not followed.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = dsbackup_client::verify::walk(dir)
        .unwrap()
        .into_iter()
        .map(|path| {
            let bytes = std::fs::symlink_metadata(&path)
                .unwrap()
                .is_file()
                .then(|| std::fs::read(&path).unwrap())
                .unwrap_or_default();
            (path.display().to_string(), bytes)
        })
        .collect();
    out.sort();
    out
}

fn locations(database: &str, dir: &str) -> Vec<NameEntry> {
    vec![
        NameEntry::new(BftKind::NTDS_DATABASE, database),
        NameEntry::new(BftKind::LOG_DIR, dir),
        NameEntry::new(BftKind::CHECKPOINT_DIR, dir),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_locations_write_nothing_outside_the_mapped_directory() {
    let dc = Dc::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let set = tmp.path().join("set");
    backup_to_dir(
        &dc.client(BACKUP_USER),
        &set,
        &BackupOptions::default(),
        &mut NoProgress,
    )
    .await
    .unwrap();
    let mapped = tmp.path().join("mapped");
    let victim = tmp.path().join("victim");
    std::fs::create_dir_all(mapped.join("NTDS")).unwrap();
    std::fs::create_dir_all(&victim).unwrap();
    std::fs::write(victim.join("ntds.dit"), b"the live database").unwrap();
    std::fs::write(mapped.join("NTDS/ntds.dit"), b"the DC's database").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(&victim, mapped.join("linked")).unwrap();
    let victim_path = victim.join("ntds.dit").display().to_string();
    let victim_dir = victim.display().to_string();
    let cases: Vec<(&str, Vec<NameEntry>, &str)> = vec![
        (
            "absolute",
            locations(&victim_path, &victim_dir),
            "no --map rule covers it",
        ),
        (
            "dot-dot",
            locations(
                r"\\DC1\C$\NTDS\..\..\victim\ntds.dit",
                r"\\DC1\C$\NTDS\..\..\victim",
            ),
            "leaves the mapped directory",
        ),
        #[cfg(unix)]
        (
            "symlinked",
            locations(r"\\DC1\C$\linked\ntds.dit", r"\\DC1\C$\linked"),
            "symbolic link",
        ),
        (
            "existing",
            locations(r"\\DC1\C$\NTDS\ntds.dit", r"\\DC1\C$\NTDS"),
            "--overwrite",
        ),
    ];
    let before = snapshot(tmp.path());
    for (case, entries, says) in cases {
        let (server, script, client) = hostile(entries).await;
        let options = RestoreOptions {
            rt_flag: 0,
            map: PathMap::new().with_rule(r"\\DC1\C$", &mapped),
            overwrite: false,
        };
        let planned = plan_restore_from_dir(&client, &set, &options).await;
        let restored = restore_from_dir(&client, &set, &options, &mut NoProgress).await;
        for error in [planned.unwrap_err(), restored.unwrap_err()] {
            assert!(matches!(error, Error::Target { .. }), "{case}: {error:?}");
            assert!(error.to_string().contains(says), "{case}: {error}");
        }
        assert_eq!(script.registered.load(Ordering::SeqCst), 0, "{case}");
        assert_eq!(snapshot(tmp.path()), before, "{case}: something changed");
        assert_no_bindings(&client);
        server.shutdown().await;
    }
}
