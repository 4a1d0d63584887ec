use super::*;

#[test]
fn the_flag_names_an_exec_command_and_its_arguments() {
    let t = Duration::from_secs(60);
    let p = from_flag(
        "exec:/usr/local/bin/vpc-aws --table rtb-1  --region eu-west-1",
        t,
    )
    .expect("exec provider");
    assert_eq!(
        p.name(),
        "exec:/usr/local/bin/vpc-aws --table rtb-1 --region eu-west-1"
    );
    for bad in ["exec:", "exec:   ", "lab:keel-lab-x-router", "aws", ""] {
        let err = from_flag(bad, t).err().expect(bad);
        assert!(
            matches!(&err, VpcError::Flag { flag, .. } if flag == bad),
            "{bad}: {err}"
        );
    }
}
