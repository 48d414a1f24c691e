/*
Copyright 2026 The Kshaka Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Package v1alpha1 contains the KshakaCluster, KshakaBackup and
// KshakaScheduledBackup API (group kshaka.io, version v1alpha1).
//
// A KshakaCluster describes a set of CASPaxos acceptors run as a StatefulSet.
// The spec says what the user wants (size, image, storage, scheduling); the
// status is the operator's durable memory of the membership procedure
// (docs/design.md §5–§6): the configuration it installed, each member's incarnation,
// the retired incarnations, and the transition in progress with its step and
// rescan cursor. The status is written before every step is carried out, so
// an operator restart resumes where it stopped.
//
// +kubebuilder:object:generate=true
// +groupName=kshaka.io
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

var (
	// GroupVersion is group version used to register these objects.
	GroupVersion = schema.GroupVersion{Group: "kshaka.io", Version: "v1alpha1"}

	// SchemeBuilder adds this group-version's types to a scheme.
	SchemeBuilder = runtime.NewSchemeBuilder(addKnownTypes)

	// AddToScheme adds the types in this group-version to the given scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)

func addKnownTypes(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion,
		&KshakaCluster{}, &KshakaClusterList{},
		&KshakaBackup{}, &KshakaBackupList{},
		&KshakaScheduledBackup{}, &KshakaScheduledBackupList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
