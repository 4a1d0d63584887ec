use super::*;

#[test]
fn shapes_and_counts() {
    let svcs = services(3, 10);
    assert_eq!(svcs[2].vip, Ipv4Addr::new(10, 96, 0, 3));
    assert_eq!(svcs[2].endpoints[9].0, pod_ip(29));
    let ipt = iptables_full(&svcs, CLUSTER_CIDR);
    // Per service: 1 KUBE-SERVICES rule, 1 masquerade rule, 10 pick
    // rules, 10 × 2 endpoint rules.
    let rules = ipt.lines().filter(|l| l.starts_with("-A KUBE-S")).count();
    assert_eq!(rules, 3 * (1 + 1 + 10 + 20));
    assert!(ipt.contains("--probability 0.1000000000"));
    assert!(ipt.contains("--probability 0.5000000000"));
    assert!(ipt.ends_with("COMMIT\n"));
    let nft = nft_full(&svcs, CLUSTER_CIDR);
    assert_eq!(
        nft.lines().filter(|l| l.starts_with("add element")).count(),
        3
    );
    assert_eq!(nft.lines().filter(|l| l.contains("dnat to")).count(), 30);
    let mut new = svcs[1].clone();
    new.endpoints[0] = (pod_ip(1000), 8080);
    let up = iptables_update(&svcs[1], &new, CLUSTER_CIDR);
    assert_eq!(up.lines().filter(|l| l.starts_with("-X ")).count(), 1);
    let up = nft_update(&svcs[1], &new, CLUSTER_CIDR);
    assert_eq!(
        up.lines().filter(|l| l.starts_with("delete chain")).count(),
        1
    );
    assert_eq!(up.lines().filter(|l| l.contains("dnat to")).count(), 1);
}
