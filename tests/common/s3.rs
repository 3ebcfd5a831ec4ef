//! [`S3Server`]: a throwaway S3-compatible object store on 127.0.0.1 — `moto` in server
//! mode (PyPI), which speaks S3's REST protocol and, once set up, checks every request's
//! AWS Signature Version 4 against the access keys it issued, as S3 does.
//!
//! `scripts/test` installs moto into a virtualenv and names its `moto_server` in
//! `GATEHOUSE_MOTO_SERVER`; without it the default path `/opt/gatehouse-moto/bin` is used.
//!
//! Setup: moto answers the first few requests without authentication
//! (`INITIAL_NO_AUTH_ACTION_COUNT`); those create an IAM user with an access key and a policy
//! allowing S3, and the bucket. Every later request must be signed with that key.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use super::process::{describe, kill_child, run_with_timeout, stdout};
use super::servers::{free_port, read_or_empty};

const DEFAULT_MOTO: &str = "/opt/gatehouse-moto/bin/moto_server";
/// The unauthenticated setup requests: user, access key, policy, bucket.
const SETUP_REQUESTS: u32 = 4;
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running moto S3 server with one bucket; dropping it kills the server.
pub struct S3Server {
    pub port: u16,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    dir: TempDir,
    child: Option<Child>,
}

fn moto_server() -> PathBuf {
    let path = std::env::var_os("GATEHOUSE_MOTO_SERVER").map(PathBuf::from).unwrap_or_else(|| DEFAULT_MOTO.into());
    assert!(
        path.exists(),
        "{} is missing: python3 -m venv /opt/gatehouse-moto && /opt/gatehouse-moto/bin/pip install 'moto[server]' \
         (scripts/test does this)",
        path.display()
    );
    path
}

impl S3Server {
    /// Starts moto on a free port, with the bucket `bucket` and an access key for it.
    pub fn start(bucket: &str) -> S3Server {
        let dir = tempfile::Builder::new().prefix("gatehouse-s3-").tempdir().expect("creating a temp dir");
        let mut s3 = S3Server {
            port: 0,
            bucket: bucket.to_string(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            dir,
            child: None,
        };
        for attempt in 1..=3 {
            s3.port = free_port();
            if s3.spawn_and_wait() {
                s3.set_up();
                return s3;
            }
            kill_child(&mut s3.child);
            assert!(attempt < 3, "moto did not start:\n{}", s3.log());
        }
        unreachable!("the loop returns or panics")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("moto.log")
    }

    pub fn log(&self) -> String {
        read_or_empty(&self.log_path())
    }

    /// `http://127.0.0.1:PORT`, as `[recordings.s3] endpoint` takes it.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The gateway's `[recordings.s3]` table for this server, with `extra` lines.
    pub fn config(&self, extra: &str) -> String {
        format!(
            "[recordings.s3]\nbucket = \"{}\"\nendpoint = \"{}\"\naccess_key_id = \"{}\"\nsecret_access_key = \"{}\"\n{extra}\n",
            self.bucket,
            self.endpoint(),
            self.access_key_id,
            self.secret_access_key
        )
    }

    fn spawn_and_wait(&mut self) -> bool {
        let log = std::fs::File::create(self.log_path()).expect("creating the moto log");
        let child = Command::new(moto_server())
            .args(["-H", "127.0.0.1", "-p", &self.port.to_string()])
            .env("INITIAL_NO_AUTH_ACTION_COUNT", SETUP_REQUESTS.to_string())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("cloning a file handle"))
            .stderr(log)
            .spawn()
            .expect("starting moto_server");
        self.child = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        while Instant::now() < deadline {
            if let Some(Ok(Some(_))) = self.child.as_mut().map(|c| c.try_wait()) {
                return false;
            }
            if self.log().contains("Running on") && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The four unauthenticated requests: an IAM user, its access key, a policy letting it
    /// use S3, and the bucket.
    fn set_up(&mut self) {
        // moto routes a request to IAM by the service named in its (unchecked, during
        // setup) Authorization header.
        let iam = "Authorization: AWS4-HMAC-SHA256 Credential=SETUP/20260101/us-east-1/iam/aws4_request, \
                   SignedHeaders=host, Signature=00";
        let url = self.endpoint();
        let log = self.log_path();
        let call = |args: &[&str]| -> String {
            let out = run_with_timeout(
                Command::new("curl").args(["-sS", "--fail-with-body", "-X", "POST", &url, "-H", iam]).args(args),
                None,
                Duration::from_secs(20),
            );
            assert!(out.status.success(), "IAM setup call failed: {}\n{}", describe(&out), read_or_empty(&log));
            stdout(&out)
        };
        call(&["-d", "Action=CreateUser&UserName=gatehouse&Version=2010-05-08"]);
        let key = call(&["-d", "Action=CreateAccessKey&UserName=gatehouse&Version=2010-05-08"]);
        let field = |name: &str| -> String {
            let open = format!("<{name}>");
            let start = key.find(&open).map(|i| i + open.len()).unwrap_or_else(|| panic!("no {name} in {key}"));
            key[start..].split('<').next().unwrap_or_default().to_string()
        };
        self.access_key_id = field("AccessKeyId");
        self.secret_access_key = field("SecretAccessKey");
        call(&[
            "--data-urlencode",
            r#"PolicyDocument={"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:*","Resource":"*"}]}"#,
            "-d",
            "Action=PutUserPolicy&UserName=gatehouse&PolicyName=s3&Version=2010-05-08",
        ]);
        let out = run_with_timeout(
            Command::new("curl").args(["-sS", "--fail-with-body", "-X", "PUT", &format!("{url}/{}", self.bucket)]),
            None,
            Duration::from_secs(20),
        );
        assert!(out.status.success(), "creating the bucket failed: {}\n{}", describe(&out), self.log());
    }

    /// The object `key` of the bucket, read with the issued key through boto3 (moto's own
    /// dependency, AWS's Python SDK): an independent client checking what the gateway
    /// stored. None when there is no such object.
    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        let out = self.boto3(&format!(
            "import sys\ntry:\n    body = s3.get_object(Bucket={:?}, Key={key:?})['Body'].read()\n\
             except s3.exceptions.NoSuchKey:\n    sys.exit(3)\nsys.stdout.buffer.write(body)\n",
            self.bucket
        ));
        match out.status.code() {
            Some(0) => Some(out.stdout),
            Some(3) => None,
            _ => panic!("reading {key} from the bucket failed: {}", describe(&out)),
        }
    }

    /// The names of the bucket's objects.
    pub fn keys(&self) -> Vec<String> {
        let out = self.boto3(&format!(
            "for o in s3.list_objects_v2(Bucket={:?}).get('Contents', []):\n    print(o['Key'])\n",
            self.bucket
        ));
        assert!(out.status.success(), "listing the bucket failed: {}", describe(&out));
        stdout(&out).lines().map(str::to_string).collect()
    }

    fn boto3(&self, body: &str) -> std::process::Output {
        let python = moto_server().with_file_name("python3");
        let script = format!(
            "import boto3\ns3 = boto3.client('s3', endpoint_url={:?}, aws_access_key_id={:?}, \
             aws_secret_access_key={:?}, region_name='us-east-1')\n{body}",
            self.endpoint(),
            self.access_key_id,
            self.secret_access_key
        );
        run_with_timeout(Command::new(python).arg("-c").arg(script), None, Duration::from_secs(30))
    }

    /// Freezes the server (SIGSTOP): it accepts connections and answers nothing, as a
    /// store that hangs does.
    pub fn freeze(&self) {
        self.signal("-STOP");
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        self.signal("-CONT");
    }

    fn signal(&self, sig: &str) {
        let pid = self.child.as_ref().map(|c| c.id()).expect("moto is running");
        let status = Command::new("kill").arg(sig).arg(pid.to_string()).status().expect("kill");
        assert!(status.success(), "kill {sig} {pid}");
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(c) = &self.child {
            let _ = Command::new("kill").arg("-CONT").arg(c.id().to_string()).status();
        }
        kill_child(&mut self.child);
    }
}
